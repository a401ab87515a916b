package stsdouble

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	apiVersion = "2011-06-15"
	xmlns      = "https://sts.amazonaws.com/doc/2011-06-15/"
	// maxBodyBytes bounds a request body; STS requests are small.
	maxBodyBytes = 1 << 20
)

// Error is an STS error as the double returns it. Status is the HTTP status;
// the Type element is "Sender" for 4xx and "Receiver" for 5xx, as AWS does.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     errorBody
	RequestID string `xml:"RequestId"`
}

type errorBody struct {
	Type    string
	Code    string
	Message string
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string
}

type assumeRoleResult struct {
	Credentials      credentialsXML
	AssumedRoleUser  assumedRoleUser
	PackedPolicySize *int   `xml:",omitempty"`
	SourceIdentity   string `xml:",omitempty"`
}

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleWithWebIdentityResult struct {
	SubjectFromWebIdentityToken string
	Audience                    string
	Credentials                 credentialsXML
	AssumedRoleUser             assumedRoleUser
	PackedPolicySize            *int `xml:",omitempty"`
	Provider                    string
	SourceIdentity              string `xml:",omitempty"`
}

type assumeRoleWithWebIdentityResponse struct {
	XMLName  xml.Name                        `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns    string                          `xml:"xmlns,attr"`
	Result   assumeRoleWithWebIdentityResult `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata responseMetadata                `xml:"ResponseMetadata"`
}

type getCallerIdentityResult struct {
	Arn     string
	UserID  string `xml:"UserId"`
	Account string
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name                `xml:"GetCallerIdentityResponse"`
	Xmlns    string                  `xml:"xmlns,attr"`
	Result   getCallerIdentityResult `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata        `xml:"ResponseMetadata"`
}

func writeXML(w http.ResponseWriter, v any, requestID string) {
	out, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, requestID, &Error{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append([]byte(xml.Header), out...))
}

func writeError(w http.ResponseWriter, requestID string, e *Error) {
	kind := "Sender"
	if e.Status >= 500 {
		kind = "Receiver"
	}
	out, _ := xml.MarshalIndent(errorResponse{
		Xmlns:     xmlns,
		Error:     errorBody{Type: kind, Code: e.Code, Message: e.Message},
		RequestID: requestID,
	}, "", "  ")
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(e.Status)
	_, _ = w.Write(append([]byte(xml.Header), out...))
}

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return nil, errors.New("request body too large")
	}
	return body, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return b
}

// newRequestID returns a UUID-shaped request id.
func newRequestID() string {
	h := hex.EncodeToString(randomBytes(16))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newKeyID returns an AWS-shaped key id: prefix plus 16 upper-case base32
// characters (AKIA for long-term keys, ASIA for session keys, AROA for role
// ids).
func newKeyID(prefix string) string {
	return prefix + strings.ToUpper(base32.StdEncoding.EncodeToString(randomBytes(10)))
}

func newSecret() string { return base64.StdEncoding.EncodeToString(randomBytes(30)) }

func newSessionToken() string {
	return "IQoJb3JpZ2luX2Vj" + base64.StdEncoding.EncodeToString(randomBytes(180))
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
