package portal

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"ztproxy/decide"
)

// SecurityEventsPath is the Shared Signals push receiver (RFC 8935).
const SecurityEventsPath = "/.ztp/security-events"

// maxSETBody bounds a pushed SET; a larger body is refused unread.
const maxSETBody = 64 << 10

// errSETRefused is the audit code of a refused SET (the body carries RFC
// 8935's own code).
var errSETRefused = &decide.Error{Status: http.StatusBadRequest, Code: "security_event_refused", Msg: "security event refused"}

// setError is a SET refused with an RFC 8935 error code.
type setError interface {
	SETError() (code, description string)
}

// handleSecurityEvents takes one SET (application/secevent+jwt): 202 when
// it was verified and applied, 400 with {"err", "description"} (RFC 8935
// §2.3) when refused, 503 when it was accepted but the store failed.
func (pt *Portal) handleSecurityEvents(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	recv := x.Engine.Config().Signals
	if recv == nil {
		return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no security event transmitters are configured"}
	}
	if r.Method != http.MethodPost {
		return decide.ErrMethod
	}
	w.Header().Set("Cache-Control", "no-store")
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/secevent+jwt" {
		return pt.setAnswer(w, x, "invalid_request", "the body must be application/secevent+jwt")
	}
	if r.ContentLength > maxSETBody {
		return pt.setAnswer(w, x, "invalid_request", "the SET is larger than 64 KiB")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSETBody))
	if err != nil {
		return pt.setAnswer(w, x, "invalid_request", "the SET is larger than 64 KiB or could not be read")
	}
	err = recv.ReceiveSET(r.Context(), body)
	var se setError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
		x.Status = http.StatusAccepted
		return nil
	case errors.As(err, &se):
		code, desc := se.SETError()
		pt.log.Info("security event refused", "code", code, "err", err, "request_id", x.RC.RequestID)
		return pt.setAnswer(w, x, code, desc)
	}
	return &decide.Error{Status: http.StatusServiceUnavailable, Code: "security_event_failed",
		Msg: "the security event was accepted but could not be applied; the operator is alerted", Err: err}
}

// setAnswer writes an RFC 8935 error response.
func (pt *Portal) setAnswer(w http.ResponseWriter, x *decide.Exchange, code, desc string) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"err": code, "description": desc})
	x.Status, x.ErrCode = http.StatusBadRequest, errSETRefused.Code
	return nil
}
