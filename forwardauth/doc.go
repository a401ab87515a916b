// Package forwardauth is the front door for front proxies that ask
// before they forward: /.ztp/verify for nginx auth_request, Traefik
// ForwardAuth and Caddy forward_auth (ServeVerify), and Envoy's external
// authorization gRPC API (Check). It reads the original request the front
// proxy describes (strictly: exactly one style of headers, a canonical
// method, an absolute path), asks the decision engine about it, and
// answers with the identity headers and signed assertion on an allow, or
// a challenge, a sign-in or step-up location and a small JSON body on a
// refusal. It never forwards a request and never renders HTML.
//
// It must not import the reverse proxy or the portal; it imports the
// decision engine, the identity headers, the metrics and identity.
package forwardauth
