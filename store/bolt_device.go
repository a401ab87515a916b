package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// The embedded store keeps devices in one bucket keyed by id; listing by
// owner scans it (one replica's inventory is small).

// CreateDevice stores a new device with version 1.
func (b *Bolt) CreateDevice(ctx context.Context, d DeviceRecord) error {
	if err := validateDevice(d); err != nil {
		return err
	}
	d.Version = 1
	return b.update(ctx, "create device", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDevices)
		if bk.Get([]byte(d.ID)) != nil {
			return ErrExists
		}
		return putJSON(bk, []byte(d.ID), d)
	})
}

// GetDevice returns the device or ErrNotFound.
func (b *Bolt) GetDevice(ctx context.Context, id string) (DeviceRecord, error) {
	var d DeviceRecord
	err := b.view(ctx, "get device", func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketDevices), []byte(id), &d)
		if err == nil && !found {
			return ErrNotFound
		}
		return err
	})
	return d, err
}

// UpdateDevice replaces the device if its version is still d.Version.
func (b *Bolt) UpdateDevice(ctx context.Context, d DeviceRecord) error {
	if err := validateDevice(d); err != nil {
		return err
	}
	return b.update(ctx, "update device", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDevices)
		var cur DeviceRecord
		found, err := getJSON(bk, []byte(d.ID), &cur)
		switch {
		case err != nil:
			return err
		case !found:
			return ErrNotFound
		case cur.Version != d.Version || cur.Owner != d.Owner:
			return ErrConflict
		}
		d.Version++
		return putJSON(bk, []byte(d.ID), d)
	})
}

// ListDevices returns the owner's devices, or all for owner "", by id.
func (b *Bolt) ListDevices(ctx context.Context, owner string) ([]DeviceRecord, error) {
	var out []DeviceRecord
	err := b.view(ctx, "list devices", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, _ []byte) error {
			var d DeviceRecord
			if _, err := getJSON(tx.Bucket(bucketDevices), k, &d); err != nil {
				return err
			}
			if owner == "" || d.Owner == owner {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, err
}
