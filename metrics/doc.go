// Package metrics owns ztproxy's Prometheus collectors (Metrics): the
// request, decision, upstream, store, risk, AWS, key set and reload
// series, named ztproxy_<subsystem>_<name>_<unit> with bounded labels
// (route name, decision, status code; never a user or a path), and the
// handler that exposes them on the admin listener.
//
// It is a leaf: it imports only the Prometheus client. Components that
// report through hooks (authn's key sets, the store, the risk engine)
// are wired to its Observe methods by cmd/ztproxy.
package metrics
