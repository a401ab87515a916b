package portal

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strconv"

	"ztproxy/decide"
	"ztproxy/devices"
)

// deviceCall checks a call from the device itself (renew, report): a POST
// with the expected content type, over TLS with the device's certificate,
// and not from a browser. A browser that holds the device certificate
// (imported for device-gated pages) sends Origin or Sec-Fetch-Site on
// every POST; refusing those means no web page can make it renew or
// report. It returns the body, at most limit bytes.
func deviceCall(w http.ResponseWriter, r *http.Request, x *decide.Exchange, contentType string, limit int64) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, decide.ErrMethod
	}
	if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
		return nil, &decide.Error{Status: http.StatusForbidden, Code: "cross_origin", Msg: "device calls come from ztproxy device, not from a browser"}
	}
	if r.Header.Get("Content-Type") != contentType {
		return nil, &decide.Error{Status: http.StatusUnsupportedMediaType, Code: "bad_device_request", Msg: "the content type must be " + contentType}
	}
	if !x.RC.Device.Present {
		return nil, decide.ErrNoClientCert
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, &decide.Error{Status: http.StatusRequestEntityTooLarge, Code: "bad_device_request", Msg: "the request body is too large (at most " + strconv.FormatInt(limit, 10) + " bytes)"}
	}
	return body, nil
}

// renewDevice issues a new certificate for the key in the body (a
// PKCS#10 request, PEM or DER) to the device whose current certificate
// the caller presents.
func (pt *Portal) renewDevice(w http.ResponseWriter, r *http.Request, x *decide.Exchange, ds DeviceService) error {
	body, err := deviceCall(w, r, x, "application/pkcs10", devices.MaxCSRBytes)
	if err != nil {
		return err
	}
	issued, err := ds.Renew(r.Context(), x.RC.Device, body)
	if err != nil {
		return deviceError(err)
	}
	pt.log.Info("device certificate renewed", "device_id", issued.Record.ID, "request_id", x.RC.RequestID)
	return writeJSON(w, x, map[string]string{
		"device_id":   issued.Record.ID,
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issued.Certificate})),
		"not_after":   issued.Record.NotAfter.UTC().Format("2006-01-02T15:04:05Z"),
	})
}

// reportPosture records a posture report (devices.Report) from the
// device whose certificate the caller presents.
func (pt *Portal) reportPosture(w http.ResponseWriter, r *http.Request, x *decide.Exchange, ds DeviceService) error {
	body, err := deviceCall(w, r, x, "application/json", devices.MaxReportBytes)
	if err != nil {
		return err
	}
	res, err := ds.Report(r.Context(), x.RC.Device, body)
	if err != nil {
		return deviceError(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	x.Status = http.StatusOK
	return json.NewEncoder(w).Encode(res)
}
