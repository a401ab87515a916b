// Package devices is ztproxy's device trust: the device CA that signs
// enrolled devices' certificates, the inventory of devices (owner,
// certificate fingerprints, status, managed, posture facts with their
// source and time), and the posture sources — reports a device sends
// over mTLS, vendor posture assertions (signed JWS, verified against the
// vendor's keys and bound to the device) and MDM inventory imports.
//
// The decision engine asks an Inventory for a device's facts on every
// request (DeviceFacts, through a one-method interface declared in
// decide); answers are cached per device for Config.CacheTTL, so a known
// device costs no store call per request and at most one store read per
// cache TTL. The portal enrols, renews and removes devices and accepts
// reports; the CLI collects reports (Collect) and manages the inventory.
//
// It imports only identity (the vocabulary) and certs (to load the CA).
// It writes no HTTP and renders nothing; errors a caller must act on are
// the exported Err… values and *InputError.
package devices
