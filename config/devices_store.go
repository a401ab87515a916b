package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"ztproxy/devices"
	"ztproxy/store"
)

// DeviceStore presents a store as the device inventory's store: the record
// is stored as one JSON document, keyed by id and listed by owner.
func DeviceStore(st store.DeviceStore) devices.Store { return deviceStore{st} }

type deviceStore struct{ st store.DeviceStore }

var _ devices.Store = deviceStore{}

func (s deviceStore) CreateDevice(ctx context.Context, r devices.Record) error {
	rec, err := toStoreDevice(r)
	if err != nil {
		return err
	}
	return deviceErr(s.st.CreateDevice(ctx, rec))
}

func (s deviceStore) GetDevice(ctx context.Context, id string) (devices.Record, error) {
	rec, err := s.st.GetDevice(ctx, id)
	if err != nil {
		return devices.Record{}, deviceErr(err)
	}
	return fromStoreDevice(rec)
}

func (s deviceStore) UpdateDevice(ctx context.Context, r devices.Record) error {
	rec, err := toStoreDevice(r)
	if err != nil {
		return err
	}
	return deviceErr(s.st.UpdateDevice(ctx, rec))
}

func (s deviceStore) ListDevices(ctx context.Context, owner string) ([]devices.Record, error) {
	recs, err := s.st.ListDevices(ctx, owner)
	if err != nil {
		return nil, deviceErr(err)
	}
	out := make([]devices.Record, 0, len(recs))
	for _, rec := range recs {
		r, err := fromStoreDevice(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func toStoreDevice(r devices.Record) (store.DeviceRecord, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return store.DeviceRecord{}, fmt.Errorf("devices: encoding %s: %w", r.ID, err)
	}
	return store.DeviceRecord{ID: r.ID, Owner: r.Owner, Version: r.Version, Data: data}, nil
}

func fromStoreDevice(rec store.DeviceRecord) (devices.Record, error) {
	var r devices.Record
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return devices.Record{}, fmt.Errorf("devices: decoding %s: %w", rec.ID, err)
	}
	if r.ID != rec.ID || r.Owner != rec.Owner {
		return devices.Record{}, fmt.Errorf("devices: record %s: document does not match its key", rec.ID)
	}
	r.Version = rec.Version
	return r, nil
}

// deviceErr maps the store's sentinels to the device package's.
func deviceErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return devices.ErrNotFound
	case errors.Is(err, store.ErrExists):
		return devices.ErrExists
	case errors.Is(err, store.ErrConflict):
		return devices.ErrConflict
	}
	return err
}
