package proxy

import (
	"net/http"
	"net/url"

	"ztproxy/awscreds"
	"ztproxy/identity"
)

// AWSCredentialsPath serves a signed-in user's credentials for a role in
// the AWS credential_process format.
const AWSCredentialsPath = "/.ztp/aws/credentials"

// AWSConsolePath signs a user into the AWS console for a role.
const AWSConsolePath = "/.ztp/aws/console"

// handleAWSCredentials answers /.ztp/aws/credentials?role=NAME with the
// credentials in the AWS credential_process format.
func (s *Server) handleAWSCredentials(w http.ResponseWriter, r *http.Request, x *exchange) error {
	creds, err := s.authorizedAWS(w, r, x, AWSCredentialsPath)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	x.status = http.StatusOK
	_, err = w.Write(awscreds.CredentialProcessJSON(creds))
	return err
}

// handleAWSConsole answers /.ztp/aws/console?role=NAME with a redirect
// into the AWS console (federation getSigninToken) for the same
// short-lived session.
func (s *Server) handleAWSConsole(w http.ResponseWriter, r *http.Request, x *exchange) error {
	creds, err := s.authorizedAWS(w, r, x, AWSConsolePath)
	if err != nil {
		return err
	}
	target, err := awscreds.ConsoleURL(r.Context(), creds, x.snap.issuer, "https://console.aws.amazon.com/", nil, x.snap.cfg.AWSFederationEndpoint)
	if err != nil {
		return &httpError{status: http.StatusBadGateway, code: "aws_console_failed", msg: "the AWS console sign-in failed", err: err}
	}
	x.status = http.StatusFound
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// authorizedAWS authenticates the caller and lets policy decide on the
// resource Route::"aws:<role>" like on any route, so credentials exist
// only after the request passed policy; then it mints them.
func (s *Server) authorizedAWS(w http.ResponseWriter, r *http.Request, x *exchange, path string) (awscreds.Credentials, error) {
	var none awscreds.Credentials
	if r.Method != http.MethodGet {
		return none, errMethod
	}
	role := r.URL.Query().Get("role")
	if role == "" {
		return none, &httpError{status: http.StatusBadRequest, code: "missing_role", msg: "role is required"}
	}
	returnTo := x.snap.issuer + path + "?" + url.Values{"role": {role}}.Encode()
	if err := s.authenticateEndpoint(w, r, x, returnTo); err != nil {
		return none, err
	}
	x.rc.Route, x.rc.Method, x.rc.Path = "aws:"+role, http.MethodGet, path
	if scorer := x.snap.cfg.Risk; scorer != nil {
		risk, err := scorer.Score(r.Context(), &x.rc)
		x.rc.Risk = risk
		if err != nil && risk.Level == "" {
			return none, &denyError{decision: identity.Decision{Effect: identity.Deny, Reasons: []string{"risk could not be assessed"}}, cause: err}
		}
	}
	d, err := x.snap.cfg.Authorizer.Decide(&x.rc)
	if err != nil {
		return none, &denyError{decision: identity.Decision{Effect: identity.Deny, Reasons: []string{"policy could not be evaluated"}}, cause: err}
	}
	x.decision = d
	if d.Effect != identity.Allow {
		return none, &denyError{decision: d, bearer: x.rawBearer != ""}
	}
	return s.mintAWS(r.Context(), x, role)
}
