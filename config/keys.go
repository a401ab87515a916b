package config

import (
	"context"
	"errors"

	"ztproxy/authn"
	"ztproxy/store"
)

// KeyStore presents a store's WebAuthn credentials as authn's key store.
func KeyStore(st store.CredentialStore) authn.WebAuthnStore { return keyStore{st} }

type keyStore struct{ st store.CredentialStore }

var _ authn.WebAuthnStore = keyStore{}

func (k keyStore) PutCredential(ctx context.Context, c authn.WebAuthnCredential) error {
	return k.st.PutCredential(ctx, store.Credential(c))
}

func (k keyStore) ListCredentials(ctx context.Context, userID string) ([]authn.WebAuthnCredential, error) {
	list, err := k.st.ListCredentials(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]authn.WebAuthnCredential, len(list))
	for i, c := range list {
		out[i] = authn.WebAuthnCredential(c)
	}
	return out, nil
}

func (k keyStore) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	err := k.st.DeleteCredential(ctx, userID, id)
	if errors.Is(err, store.ErrNotFound) {
		return authn.ErrWebAuthnKeyNotFound
	}
	return err
}

func (k keyStore) UpdateSignCount(ctx context.Context, userID string, id []byte, newCount uint32) error {
	return k.st.UpdateSignCount(ctx, userID, id, newCount)
}
