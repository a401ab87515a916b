package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/url"
	"slices"

	"ztproxy/identity"
)

// DeviceFromState extracts the device identity from a connection's verified
// client certificate chain. It never looks at PeerCertificates: with
// tls.RequestClientCert those are unverified and anyone can mint them. A nil
// state or one without a verified chain yields the zero Device.
//
// Device.ID is the SPIFFE id if the leaf carries exactly one spiffe:// URI
// SAN, else the first DNS SAN, else the first email SAN, else the subject
// common name. Fingerprint is the lower-case hex SHA-256 of the leaf DER.
// Managed and Posture are left for the device inventory to fill in.
func DeviceFromState(cs *tls.ConnectionState) identity.Device {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return identity.Device{}
	}
	leaf := cs.VerifiedChains[0][0]
	fp := sha256.Sum256(leaf.Raw)
	dev := identity.Device{
		Present:     true,
		SPIFFEID:    spiffeID(leaf),
		DNSNames:    slices.Clone(leaf.DNSNames),
		Emails:      slices.Clone(leaf.EmailAddresses),
		CommonName:  leaf.Subject.CommonName,
		Fingerprint: hex.EncodeToString(fp[:]),
		NotAfter:    leaf.NotAfter,
	}
	switch {
	case dev.SPIFFEID != "":
		dev.ID = dev.SPIFFEID
	case len(dev.DNSNames) > 0:
		dev.ID = dev.DNSNames[0]
	case len(dev.Emails) > 0:
		dev.ID = dev.Emails[0]
	default:
		dev.ID = dev.CommonName
	}
	return dev
}

// spiffeID returns the leaf's SPIFFE id, or "" unless there is exactly one
// well-formed spiffe:// URI SAN. An X509-SVID carries exactly one; picking
// one of several would let the issuer's ordering decide who the caller is.
func spiffeID(leaf *x509.Certificate) string {
	var found []*url.URL
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" {
			found = append(found, u)
		}
	}
	if len(found) != 1 || !validSPIFFEID(found[0]) {
		return ""
	}
	return found[0].String()
}

// validSPIFFEID applies the SPIFFE-ID rules that matter for matching: a
// trust domain without port or user info, no query or fragment.
func validSPIFFEID(u *url.URL) bool {
	return u.Scheme == "spiffe" && u.Host != "" && u.Port() == "" && u.User == nil &&
		u.Opaque == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}
