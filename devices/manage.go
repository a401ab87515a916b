package devices

import (
	"context"
	"errors"
	"fmt"

	"ztproxy/identity"
)

// updateAttempts bounds the retries of a conditional update that keeps
// losing to concurrent writers.
const updateAttempts = 5

// update applies change to the stored record with a conditional write,
// retrying on conflicts, and caches the result on this replica at once.
// change may be called more than once; an error from it aborts.
func (inv *Inventory) update(ctx context.Context, id string, change func(*Record) error) (Record, error) {
	for range updateAttempts {
		rec, err := inv.cfg.Store.GetDevice(ctx, id)
		if err != nil {
			return Record{}, err
		}
		if err := change(&rec); err != nil {
			return Record{}, err
		}
		err = inv.cfg.Store.UpdateDevice(ctx, rec)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Record{}, err
		}
		rec.Version++
		inv.cache.put(id, &rec)
		return rec, nil
	}
	return Record{}, fmt.Errorf("devices: %s: %w", id, ErrConflict)
}

// Issued is a device certificate handed to the device.
type Issued struct {
	Record Record
	// Certificate is the DER of the new certificate.
	Certificate []byte
}

// Enroll enrols a device for the browser user p, who must have passed
// EnrollmentRequirement: it checks the name and the CSR (ParseCSR), the
// owner's device count, signs a certificate for a new device id and
// stores the device as active.
func (inv *Inventory) Enroll(ctx context.Context, p *identity.Principal, name string, csr []byte) (Issued, error) {
	if p.Kind != identity.KindUser || p.ID == "" {
		return Issued{}, &InputError{Field: "principal", Msg: "only a signed-in user can enrol a device"}
	}
	if req := inv.EnrollmentRequirement(p); req != "" {
		return Issued{}, fmt.Errorf("devices: enrolment needs a fresh %s", req)
	}
	if err := checkName(name); err != nil {
		return Issued{}, err
	}
	pub, err := ParseCSR(csr)
	if err != nil {
		return Issued{}, err
	}
	owned, err := inv.cfg.Store.ListDevices(ctx, p.ID)
	if err != nil {
		return Issued{}, err
	}
	active := 0
	for _, r := range owned {
		if r.Status == identity.DeviceActive {
			active++
		}
	}
	if active >= inv.cfg.MaxPerUser {
		return Issued{}, fmt.Errorf("%w: %d active devices is the most allowed; remove one first", ErrTooManyDevices, inv.cfg.MaxPerUser)
	}
	now := inv.cfg.Now()
	id := newDeviceID()
	cert, err := inv.ca.issue(pub, id, now, inv.cfg.CertLifetime)
	if err != nil {
		return Issued{}, err
	}
	rec := Record{
		ID: id, Name: name, Owner: p.ID, Status: identity.DeviceActive, StatusAt: now, StatusBy: p.ID,
		Fingerprint: cert.fingerprint, NotAfter: cert.notAfter, EnrolledAt: now, LastSeen: now,
	}
	if err := inv.cfg.Store.CreateDevice(ctx, rec); err != nil {
		return Issued{}, err
	}
	inv.cache.put(id, &rec)
	inv.event("enrolled")
	inv.cfg.Logger.Info("devices: device enrolled", "device_id", id, "owner", p.ID, "fingerprint", cert.fingerprint, "not_after", cert.notAfter)
	return Issued{Record: rec, Certificate: cert.der}, nil
}

// Renew issues a new certificate for the key in csr to the device whose
// current certificate is d; the old certificate stays accepted (as the
// previous one) until it expires.
func (inv *Inventory) Renew(ctx context.Context, d identity.Device, csr []byte) (Issued, error) {
	pub, err := ParseCSR(csr)
	if err != nil {
		return Issued{}, err
	}
	id, ok := inv.DeviceID(d.SPIFFEID)
	if !d.Present || !ok {
		return Issued{}, ErrNotEnrolled
	}
	var cert issued
	rec, err := inv.update(ctx, id, func(r *Record) error {
		if err := usableBy(r, d.Fingerprint, true); err != nil {
			return err
		}
		now := inv.cfg.Now()
		if cert, err = inv.ca.issue(pub, id, now, inv.cfg.CertLifetime); err != nil {
			return err
		}
		r.PreviousFingerprint, r.Fingerprint, r.NotAfter, r.LastSeen = r.Fingerprint, cert.fingerprint, cert.notAfter, now
		return nil
	})
	if err != nil {
		return Issued{}, inv.notEnrolled(err)
	}
	inv.event("renewed")
	inv.cfg.Logger.Info("devices: certificate renewed", "device_id", id, "fingerprint", cert.fingerprint, "not_after", cert.notAfter)
	return Issued{Record: rec, Certificate: cert.der}, nil
}

// Get returns a device.
func (inv *Inventory) Get(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, ErrNotFound
	}
	return inv.cfg.Store.GetDevice(ctx, id)
}

// List returns the owner's devices, or every device for owner "".
func (inv *Inventory) List(ctx context.Context, owner string) ([]Record, error) {
	return inv.cfg.Store.ListDevices(ctx, owner)
}

// Remove revokes a device at its owner's request. Another user's device
// is ErrNotFound, as is an unknown one.
func (inv *Inventory) Remove(ctx context.Context, owner, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	_, err := inv.update(ctx, id, func(r *Record) error {
		if r.Owner != owner {
			return ErrNotFound
		}
		inv.setStatus(r, identity.DeviceRevoked, owner, "removed by its owner")
		return nil
	})
	if err == nil {
		inv.event("revoked")
		inv.cfg.Logger.Info("devices: device removed by its owner", "device_id", id, "owner", owner)
		inv.announce(ctx, id)
	}
	return err
}

// Revoke sets a device's status (identity.DeviceRevoked or DeviceLost)
// for an operator; every replica refuses it within CacheTTL, this one at
// once.
func (inv *Inventory) Revoke(ctx context.Context, id, status, by, reason string) (Record, error) {
	if status != identity.DeviceRevoked && status != identity.DeviceLost {
		return Record{}, &InputError{Field: "status", Msg: "must be revoked or lost"}
	}
	if !ValidID(id) {
		return Record{}, ErrNotFound
	}
	rec, err := inv.update(ctx, id, func(r *Record) error {
		inv.setStatus(r, status, by, reason)
		return nil
	})
	if err == nil {
		inv.event("revoked")
		inv.cfg.Logger.Info("devices: device revoked", "device_id", id, "status", status, "by", by, "reason", reason)
		inv.announce(ctx, id)
	}
	return rec, err
}

func (inv *Inventory) setStatus(r *Record, status, by, reason string) {
	if r.Status == identity.DeviceActive || r.Status == "" {
		r.Status, r.StatusBy, r.StatusReason, r.StatusAt = status, by, reason, inv.cfg.Now()
	}
}

// SetManaged records whether a device is managed, and by which source
// (SourceOperator or an MDM source).
func (inv *Inventory) SetManaged(ctx context.Context, id string, managed bool, source string) (Record, error) {
	if !ValidID(id) {
		return Record{}, ErrNotFound
	}
	rec, err := inv.update(ctx, id, func(r *Record) error {
		r.Managed, r.ManagedSource = managed, source
		return nil
	})
	if err == nil {
		inv.event("managed")
		inv.announce(ctx, id)
	}
	return rec, err
}

// announce tells the other replicas that device id changed (Config.Announce).
func (inv *Inventory) announce(ctx context.Context, id string) {
	if inv.cfg.Announce == nil {
		return
	}
	// The change is stored: announce it even if the caller has gone.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inv.cfg.FetchTimeout)
	defer cancel()
	if err := inv.cfg.Announce(actx, id); err != nil {
		inv.cfg.Logger.Warn("devices: change stored but not announced; other replicas see it within devices.cache_ttl", "device_id", id, "err", err)
	}
}
