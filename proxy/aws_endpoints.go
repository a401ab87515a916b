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

// handleAWSCredentials answers /.ztp/aws/credentials?role=NAME. Policy
// decides on resource Route::"aws:<role>" like on any route, so credentials
// exist only after the request passed policy.
func (s *Server) handleAWSCredentials(w http.ResponseWriter, r *http.Request, x *exchange) error {
	if r.Method != http.MethodGet {
		return errMethod
	}
	role := r.URL.Query().Get("role")
	if role == "" {
		return &httpError{status: http.StatusBadRequest, code: "missing_role", msg: "role is required"}
	}
	returnTo := x.snap.issuer + AWSCredentialsPath + "?" + url.Values{"role": {role}}.Encode()
	if err := s.authenticateEndpoint(w, r, x, returnTo); err != nil {
		return err
	}
	x.rc.Route, x.rc.Method, x.rc.Path = "aws:"+role, http.MethodGet, AWSCredentialsPath
	if scorer := x.snap.cfg.Risk; scorer != nil {
		risk, err := scorer.Score(r.Context(), &x.rc)
		x.rc.Risk = risk
		if err != nil && risk.Level == "" {
			return &denyError{decision: identity.Decision{Effect: identity.Deny, Reasons: []string{"risk could not be assessed"}}, cause: err}
		}
	}
	d, err := x.snap.cfg.Authorizer.Decide(&x.rc)
	if err != nil {
		return &denyError{decision: identity.Decision{Effect: identity.Deny, Reasons: []string{"policy could not be evaluated"}}, cause: err}
	}
	x.decision = d
	if d.Effect != identity.Allow {
		return &denyError{decision: d, bearer: x.rawBearer != ""}
	}
	creds, err := s.mintAWS(r.Context(), x, role)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	x.status = http.StatusOK
	_, err = w.Write(awscreds.CredentialProcessJSON(creds))
	return err
}
