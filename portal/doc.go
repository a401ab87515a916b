// Package portal owns ztproxy's own pages and endpoints under /.ztp/:
// the sign-in glue (login, callback, logout, signed-out), IdP step-up,
// the security key pages (verify, enroll, remove), /.ztp/whoami, the AWS
// credential endpoints, the published key set, and the templates they
// render. It is the only package that renders HTML: the reverse proxy
// writes its refusals with WriteError, the same error pages the portal
// shows.
//
// Every decision it needs — who the caller is, whether policy allows an
// AWS role, what whoami may show — it asks the decision engine
// (decide.Engine); it never forwards a request and never calls the
// authorizer itself. It must not import the reverse proxy or
// forward-auth.
package portal
