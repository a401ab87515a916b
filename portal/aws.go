package portal

import (
	"net/http"
	"net/url"

	"ztproxy/awscreds"
	"ztproxy/decide"
)

// AWSCredentialsPath serves a signed-in user's credentials for a role in
// the AWS credential_process format.
const AWSCredentialsPath = "/.ztp/aws/credentials"

// AWSConsolePath signs a user into the AWS console for a role.
const AWSConsolePath = "/.ztp/aws/console"

// handleAWSCredentials answers /.ztp/aws/credentials?role=NAME with the
// credentials in the AWS credential_process format.
func (pt *Portal) handleAWSCredentials(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	creds, err := pt.authorizedAWS(w, r, x, AWSCredentialsPath)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	x.Status = http.StatusOK
	_, err = w.Write(awscreds.CredentialProcessJSON(creds))
	return err
}

// handleAWSConsole answers /.ztp/aws/console?role=NAME with a redirect
// into the AWS console (federation getSigninToken) for the same
// short-lived session.
func (pt *Portal) handleAWSConsole(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	creds, err := pt.authorizedAWS(w, r, x, AWSConsolePath)
	if err != nil {
		return err
	}
	target, err := awscreds.ConsoleURL(r.Context(), creds, x.Engine.Issuer(), "https://console.aws.amazon.com/", nil, x.Engine.Config().AWSFederationEndpoint)
	if err != nil {
		return &decide.Error{Status: http.StatusBadGateway, Code: "aws_console_failed", Msg: "the AWS console sign-in failed", Err: err}
	}
	x.Status = http.StatusFound
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// authorizedAWS authenticates the caller and lets policy decide on the
// resource Route::"aws:<role>" like on any route, so credentials exist
// only after the request passed policy; then it mints them.
func (pt *Portal) authorizedAWS(w http.ResponseWriter, r *http.Request, x *decide.Exchange, path string) (awscreds.Credentials, error) {
	var none awscreds.Credentials
	if r.Method != http.MethodGet {
		return none, decide.ErrMethod
	}
	role := r.URL.Query().Get("role")
	if role == "" {
		return none, &decide.Error{Status: http.StatusBadRequest, Code: "missing_role", Msg: "role is required"}
	}
	returnTo := x.Engine.Issuer() + path + "?" + url.Values{"role": {role}}.Encode()
	if err := pt.authenticateEndpoint(w, r, x, returnTo); err != nil {
		return none, err
	}
	if err := x.Engine.AuthorizeAWSRole(r.Context(), x, role, path); err != nil {
		return none, err
	}
	return x.Engine.MintAWS(r.Context(), x, role)
}
