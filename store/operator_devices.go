package store

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// The device inventory over the operator socket: `ztproxy devices` works
// while ztproxy serve holds the embedded store.

// serveDevice answers the device operations; it reports false for any
// other request. changed is the device id when the inventory changed.
func (h *operatorHandler) serveDevice(w http.ResponseWriter, r *http.Request) (handled bool) {
	ctx, q := r.Context(), r.URL.Query()
	var out any
	var err error
	changed := ""
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/device":
		out, err = h.st.GetDevice(ctx, q.Get("id"))
	case "GET /v1/devices":
		var recs []DeviceRecord
		recs, err = h.st.ListDevices(ctx, q.Get("owner"))
		out = nonNilDevices(recs)
	case "POST /v1/device", "PUT /v1/device":
		var d DeviceRecord
		if err = json.NewDecoder(r.Body).Decode(&d); err != nil {
			err = invalid("device record: %v", err)
			break
		}
		if r.Method == http.MethodPost {
			err = h.st.CreateDevice(ctx, d)
		} else {
			err = h.st.UpdateDevice(ctx, d)
		}
		changed = d.ID
	default:
		return false
	}
	if changed != "" && err == nil && h.onChange != nil {
		h.onChange(DeviceChanged, changed)
	}
	writeOperatorAnswer(w, out, err)
	return true
}

// DeviceChanged is what the operator server's onChange callback receives,
// with the device id, after a device record changed.
const DeviceChanged = "device changed"

func nonNilDevices(recs []DeviceRecord) []DeviceRecord {
	if recs == nil {
		return []DeviceRecord{}
	}
	return recs
}

// CreateDevice implements DeviceStore.
func (o *OperatorClient) CreateDevice(ctx context.Context, d DeviceRecord) error {
	return o.do(ctx, http.MethodPost, "/v1/device", nil, d, nil)
}

// GetDevice implements DeviceStore.
func (o *OperatorClient) GetDevice(ctx context.Context, id string) (DeviceRecord, error) {
	var d DeviceRecord
	err := o.do(ctx, http.MethodGet, "/v1/device", url.Values{"id": {id}}, nil, &d)
	return d, err
}

// UpdateDevice implements DeviceStore.
func (o *OperatorClient) UpdateDevice(ctx context.Context, d DeviceRecord) error {
	return o.do(ctx, http.MethodPut, "/v1/device", nil, d, nil)
}

// ListDevices implements DeviceStore.
func (o *OperatorClient) ListDevices(ctx context.Context, owner string) ([]DeviceRecord, error) {
	var recs []DeviceRecord
	err := o.do(ctx, http.MethodGet, "/v1/devices", url.Values{"owner": {owner}}, nil, &recs)
	return recs, err
}
