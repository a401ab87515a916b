package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Operator is what the operator's commands (ztproxy risk, ztproxy keys)
// need of the store. Bolt and Dynamo implement it, and so does the client
// of a running proxy's operator socket (DialOperator).
type Operator interface {
	FlagStore
	UserDirectory
	DeviceStore
	GetProfile(ctx context.Context, userID string) (Profile, error)
	ListCredentials(ctx context.Context, userID string) ([]Credential, error)
	DeleteCredential(ctx context.Context, userID string, id []byte) error
	// RevokeUserSessions and PublishChange: the kill switch (`ztproxy
	// sessions revoke`) and telling every replica about a change.
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) ([]string, error)
	PublishChange(ctx context.Context, c Change) error
	Close() error
}

var (
	_ Operator = (*Bolt)(nil)
	_ Operator = (*Dynamo)(nil)
	_ Operator = (*OperatorClient)(nil)
)

// The embedded store's file is locked while ztproxy serve runs, so the
// operator's commands cannot open it then. The running proxy shares it
// instead over a Unix socket next to the file, OperatorSocketPath: the
// socket is created mode 0600 inside a private directory and only then
// moved into place, and on Linux every connection must also come from the
// same user (or root), so it grants nothing that reading the store file
// would not (the file is 0600 too). It speaks HTTP/1.1 with JSON bodies.

// OperatorSocketPath is where the proxy holding the embedded store at
// dbPath listens for operator commands.
func OperatorSocketPath(dbPath string) string { return dbPath + ".sock" }

// The bodies of 409 answers, which tell ErrExists and ErrConflict apart.
const (
	conflictExists  = "exists"
	conflictChanged = "changed"
)

// maxOperatorBody bounds a request or answer on the operator socket.
const maxOperatorBody = 1 << 20

// OperatorServer serves a store on the operator socket.
type OperatorServer struct {
	srv  *http.Server
	path string
	done chan struct{}
}

// ServeOperator listens on path and serves st until Close. onChange, when
// set, is called after each change with what changed ("flag set", "flag
// cleared", "security key removed") and the user id, so that the proxy
// logs it and applies it at once.
func ServeOperator(path string, st Operator, onChange func(what, userID string)) (*OperatorServer, error) {
	ln, err := listenPrivateUnix(path)
	if err != nil {
		return nil, fmt.Errorf("store: operator socket: %w", err)
	}
	h := &operatorHandler{st: st, onChange: onChange}
	s := &OperatorServer{path: path, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerAllowedKey{}, peerIsSameUser(c))
		},
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops serving and removes the socket.
func (s *OperatorServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	_ = os.Remove(s.path)
	return err
}

type peerAllowedKey struct{}

// operatorHandler answers the operator socket's requests.
type operatorHandler struct {
	st       Operator
	onChange func(what, userID string)
}

func (h *operatorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ok, _ := r.Context().Value(peerAllowedKey{}).(bool); !ok {
		http.Error(w, "connection from another user refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxOperatorBody)
	q := r.URL.Query()
	user := q.Get("user")
	var out any
	var err error
	changed := ""
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/flag":
		out, err = h.st.GetFlag(r.Context(), user)
	case "PUT /v1/flag":
		var f Flag
		if err = json.NewDecoder(r.Body).Decode(&f); err == nil {
			user, err, changed = f.UserID, h.st.SetFlag(r.Context(), f), "flag set"
		}
	case "DELETE /v1/flag":
		err, changed = h.st.ClearFlag(r.Context(), user), "flag cleared"
	case "GET /v1/profile":
		out, err = h.st.GetProfile(r.Context(), user)
	case "GET /v1/credentials":
		out, err = h.st.ListCredentials(r.Context(), user)
	case "DELETE /v1/credentials":
		var id []byte
		if id, err = base64.RawURLEncoding.DecodeString(q.Get("id")); err == nil {
			err, changed = h.st.DeleteCredential(r.Context(), user, id), "security key removed"
		}
	case "GET /v1/users":
		out, err = h.st.FindUsersByEmail(r.Context(), q.Get("email"))
	default:
		if !h.serveDevice(w, r) && !h.serveCAE(w, r) {
			http.Error(w, "unknown operation", http.StatusNotFound)
		}
		return
	}
	if changed != "" && err == nil && h.onChange != nil {
		h.onChange(changed, user)
	}
	writeOperatorAnswer(w, out, err)
}

func writeOperatorAnswer(w http.ResponseWriter, out any, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
	case errors.Is(err, errInvalid):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrExists):
		http.Error(w, conflictExists, http.StatusConflict)
	case errors.Is(err, ErrConflict):
		http.Error(w, conflictChanged, http.StatusConflict)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	case out == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// OperatorClient reaches a running proxy's store through its operator
// socket.
type OperatorClient struct {
	c *http.Client
}

// ErrNoOperatorSocket reports that nothing answers on the operator socket
// (no proxy runs, or it died and left the socket file behind).
var ErrNoOperatorSocket = errors.New("store: no running ztproxy answers on the operator socket")

// DialOperator connects to the operator socket at path and checks that a
// proxy answers there.
func DialOperator(ctx context.Context, path string) (*OperatorClient, error) {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 1, ResponseHeaderTimeout: 30 * time.Second,
	}
	oc := &OperatorClient{c: &http.Client{Transport: tr, Timeout: time.Minute}}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %v", ErrNoOperatorSocket, path, err)
	}
	conn.Close()
	return oc, nil
}

// Close releases the client's connections.
func (o *OperatorClient) Close() error {
	o.c.CloseIdleConnections()
	return nil
}

// do sends one operation and decodes its answer into out (when not nil).
func (o *OperatorClient) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://ztproxy"+path+"?"+q.Encode(), rd)
	if err != nil {
		return err
	}
	resp, err := o.c.Do(req)
	if err != nil {
		return fmt.Errorf("store: operator socket: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxOperatorBody))
	if err != nil {
		return fmt.Errorf("store: operator socket: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && len(data) == 0:
		return ErrNotFound
	case resp.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("%w: %s", errInvalid, bytes.TrimSpace(data))
	case resp.StatusCode == http.StatusConflict && string(bytes.TrimSpace(data)) == conflictExists:
		return ErrExists
	case resp.StatusCode == http.StatusConflict:
		return ErrConflict
	case resp.StatusCode >= 300:
		return fmt.Errorf("store: operator socket: %s: %s", resp.Status, bytes.TrimSpace(data))
	case out != nil:
		return json.Unmarshal(data, out)
	}
	return nil
}

func userQuery(userID string) url.Values { return url.Values{"user": {userID}} }

// GetFlag implements FlagStore.
func (o *OperatorClient) GetFlag(ctx context.Context, userID string) (Flag, error) {
	var f Flag
	err := o.do(ctx, http.MethodGet, "/v1/flag", userQuery(userID), nil, &f)
	return f, err
}

// SetFlag implements FlagStore.
func (o *OperatorClient) SetFlag(ctx context.Context, f Flag) error {
	return o.do(ctx, http.MethodPut, "/v1/flag", nil, f, nil)
}

// ClearFlag implements FlagStore.
func (o *OperatorClient) ClearFlag(ctx context.Context, userID string) error {
	return o.do(ctx, http.MethodDelete, "/v1/flag", userQuery(userID), nil, nil)
}

// GetProfile returns the user's profile or ErrNotFound.
func (o *OperatorClient) GetProfile(ctx context.Context, userID string) (Profile, error) {
	var p Profile
	err := o.do(ctx, http.MethodGet, "/v1/profile", userQuery(userID), nil, &p)
	return p, err
}

// ListCredentials returns the user's security keys.
func (o *OperatorClient) ListCredentials(ctx context.Context, userID string) ([]Credential, error) {
	var cs []Credential
	err := o.do(ctx, http.MethodGet, "/v1/credentials", userQuery(userID), nil, &cs)
	return cs, err
}

// DeleteCredential removes one of the user's security keys.
func (o *OperatorClient) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	q := userQuery(userID)
	q.Set("id", base64.RawURLEncoding.EncodeToString(id))
	return o.do(ctx, http.MethodDelete, "/v1/credentials", q, nil, nil)
}

// FindUsersByEmail implements UserDirectory.
func (o *OperatorClient) FindUsersByEmail(ctx context.Context, email string) ([]string, error) {
	var ids []string
	err := o.do(ctx, http.MethodGet, "/v1/users", url.Values{"email": {email}}, nil, &ids)
	return ids, err
}
