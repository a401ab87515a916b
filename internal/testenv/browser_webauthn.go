package testenv

import (
	"testing"

	"github.com/chromedp/cdproto/webauthn"
)

// VirtualAuthenticator is a CDP virtual WebAuthn authenticator attached to
// one tab: a CTAP2 USB security key with user verification that answers
// every request at once (automatic presence simulation). It stays through
// navigations of the tab.
type VirtualAuthenticator struct {
	tab *Tab
	ID  webauthn.AuthenticatorID
}

// AddVirtualAuthenticator enables the WebAuthn domain for the tab and
// attaches a new authenticator. Pages of the tab then see only virtual
// authenticators.
func (tb *Tab) AddVirtualAuthenticator(t testing.TB) *VirtualAuthenticator {
	t.Helper()
	if _, err := callTab(tb, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		tb.fatal(t, "enabling WebAuthn", err)
	}
	res, err := callTab(tb, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportUsb,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		tb.fatal(t, "adding a virtual authenticator", err)
	}
	return &VirtualAuthenticator{tab: tb, ID: res.AuthenticatorID}
}

// Credentials returns the credentials the authenticator holds.
func (a *VirtualAuthenticator) Credentials(t testing.TB) []*webauthn.Credential {
	t.Helper()
	res, err := callTab(a.tab, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: a.ID})
	if err != nil {
		a.tab.fatal(t, "listing virtual credentials", err)
	}
	return res.Credentials
}

// SetUserVerified decides whether the next user verifications succeed.
func (a *VirtualAuthenticator) SetUserVerified(t testing.TB, ok bool) {
	t.Helper()
	if _, err := callTab(a.tab, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: a.ID, IsUserVerified: ok}); err != nil {
		a.tab.fatal(t, "setting user verification", err)
	}
}

// Remove detaches the authenticator (its credentials are gone with it).
func (a *VirtualAuthenticator) Remove(t testing.TB) {
	t.Helper()
	if _, err := callTab(a.tab, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a.ID}); err != nil {
		a.tab.fatal(t, "removing the virtual authenticator", err)
	}
}
