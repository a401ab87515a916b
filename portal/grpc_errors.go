package portal

import (
	"net/http"
	"strconv"
	"strings"
)

// gRPC status codes (google.golang.org/grpc/codes), as numbers: the
// portal does not import grpc-go for nine constants.
const (
	grpcUnknown           = 2
	grpcInvalidArgument   = 3
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// IsGRPC reports whether r is a gRPC call (Content-Type application/grpc
// or application/grpc+<codec>); gRPC-Web is not, it carries its status
// in the body.
func IsGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcCode maps the proxy's answer to the gRPC status a client acts on.
func grpcCode(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		return grpcResourceExhausted
	case http.StatusBadRequest:
		return grpcInvalidArgument
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	case http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	case http.StatusInternalServerError:
		return grpcInternal
	}
	return grpcUnknown
}

// writeGRPCError answers a gRPC call the proxy refused or could not
// forward with a trailers-only response: HTTP 200, Content-Type
// application/grpc, grpc-status and grpc-message, no body (a gRPC
// client cannot read an HTML or JSON page). It returns the HTTP status
// the error stands for, which the audit line and metrics record.
func writeGRPCError(w http.ResponseWriter, status int, code, msg, requestID string) int {
	if status == 499 {
		return status
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(grpcCode(status)))
	h.Set("Grpc-Message", grpcPercentEncode(code+": "+msg+" (request id "+requestID+")"))
	h.Del("Location")
	w.WriteHeader(http.StatusOK)
	return status
}

// grpcPercentEncode encodes a grpc-message value (gRPC over HTTP/2:
// bytes outside printable ASCII, and "%", percent-encoded).
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)>>4, 16)) + strings.ToUpper(strconv.FormatInt(int64(c)&15, 16)))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
