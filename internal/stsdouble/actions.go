package stsdouble

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var (
	// Patterns from the STS API reference.
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	tagPattern         = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	policyCharPattern  = regexp.MustCompile("^[\u0009\u000A\u000D\u0020-\u00FF]*$")
)

const (
	maxTags             = 50
	maxTagKeyLen        = 128
	maxTagValueLen      = 256
	maxPolicyLen        = 2048
	maxDuration         = 12 * time.Hour
	minDuration         = 15 * time.Minute
	roleChainingMaxTime = time.Hour
)

// sessionRequest holds the parameters common to both AssumeRole actions.
type sessionRequest struct {
	role        Role
	sessionName string
	duration    time.Duration
	policy      string
	tags        [][2]string
	transitive  []string
	source      string
}

func validationError(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "ValidationError", Message: fmt.Sprintf(format, args...)}
}

func constraint(value, field, rule string) *Error {
	return validationError("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, rule)
}

func (s *Server) assumeRole(who *caller, p url.Values) (*assumeRoleResult, *Error) {
	req, e := s.parseSession(p, who.arn)
	if e != nil {
		return nil, e
	}
	if e := checkExternalID(req.role, p, who.arn); e != nil {
		return nil, e
	}
	if who.chained && req.duration > roleChainingMaxTime {
		return nil, validationError("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	tags, e := parseTags(p)
	if e != nil {
		return nil, e
	}
	req.tags = tags
	if req.transitive, e = parseTransitive(p, tags); e != nil {
		return nil, e
	}
	if req.source, e = parseSourceIdentity(p.Get("SourceIdentity")); e != nil {
		return nil, e
	}
	packed, e := s.packedSize(req.policy, req.tags)
	if e != nil {
		return nil, e
	}
	creds, user := s.issue(req)
	return &assumeRoleResult{Credentials: creds, AssumedRoleUser: user, PackedPolicySize: packed, SourceIdentity: req.source}, nil
}

func (s *Server) assumeRoleWithWebIdentity(r *http.Request, p url.Values) (*assumeRoleWithWebIdentityResult, *Error) {
	if s.verifier == nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "InvalidIdentityToken", Message: "No OpenIDConnect provider found in your account."}
	}
	token := p.Get("WebIdentityToken")
	if len(token) < 4 || len(token) > 20000 {
		return nil, constraint("***", "webIdentityToken", "Member must have length between 4 and 20000")
	}
	req, e := s.parseSession(p, "")
	if e != nil {
		return nil, e
	}
	id, e := s.verifier.verify(r.Context(), token)
	if e != nil {
		return nil, e
	}
	for key, values := range id.tags {
		for _, v := range values {
			req.tags = append(req.tags, [2]string{key, v})
		}
	}
	if e := checkTags(req.tags); e != nil {
		return nil, e
	}
	if req.source, e = parseSourceIdentity(id.sourceIdentity); e != nil {
		return nil, e
	}
	packed, e := s.packedSize(req.policy, req.tags)
	if e != nil {
		return nil, e
	}
	creds, user := s.issue(req)
	return &assumeRoleWithWebIdentityResult{
		SubjectFromWebIdentityToken: id.subject,
		Audience:                    id.audience,
		Provider:                    id.provider,
		Credentials:                 creds,
		AssumedRoleUser:             user,
		PackedPolicySize:            packed,
		SourceIdentity:              req.source,
	}, nil
}

// parseSession validates RoleArn, RoleSessionName, DurationSeconds and
// Policy. callerARN names the caller in AccessDenied messages.
func (s *Server) parseSession(p url.Values, callerARN string) (*sessionRequest, *Error) {
	arn := p.Get("RoleArn")
	if arn == "" {
		return nil, validationError("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	}
	if len(arn) < 20 || len(arn) > 2048 {
		return nil, constraint(arn, "roleArn", "Member must have length between 20 and 2048")
	}
	name := p.Get("RoleSessionName")
	if name == "" {
		return nil, validationError("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	}
	if len(name) < 2 || len(name) > 64 {
		return nil, constraint(name, "roleSessionName", "Member must have length between 2 and 64")
	}
	if !sessionNamePattern.MatchString(name) {
		return nil, constraint(name, "roleSessionName", `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	req := &sessionRequest{sessionName: name, duration: time.Hour}
	if raw := p.Get("DurationSeconds"); raw != "" {
		secs, err := strconv.Atoi(raw)
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Code: "MalformedInput", Message: "Value '" + raw + "' for DurationSeconds is not a valid integer."}
		}
		req.duration = time.Duration(secs) * time.Second
		if req.duration < minDuration {
			return nil, constraint(raw, "durationSeconds", "Member must have value greater than or equal to 900")
		}
		if req.duration > maxDuration {
			return nil, constraint(raw, "durationSeconds", "Member must have value less than or equal to 43200")
		}
	}
	if e := checkPolicy(p.Get("Policy")); e != nil {
		return nil, e
	}
	req.policy = p.Get("Policy")
	role, ok := s.roles[arn]
	if !ok {
		who := callerARN
		if who == "" {
			who = "arn:aws:sts::" + s.cfg.AccountID + ":assumed-role/web-identity"
		}
		return nil, &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "User: " + who + " is not authorized to perform: sts:AssumeRole on resource: " + arn}
	}
	req.role = role
	if p.Get("DurationSeconds") != "" && req.duration > role.MaxSessionDuration {
		return nil, validationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	if p.Get("DurationSeconds") == "" && req.duration > role.MaxSessionDuration {
		req.duration = role.MaxSessionDuration
	}
	return req, nil
}

func checkPolicy(policy string) *Error {
	if policy == "" {
		return nil
	}
	if len(policy) > maxPolicyLen {
		return constraint("***", "policy", "Member must have length less than or equal to 2048")
	}
	if !policyCharPattern.MatchString(policy) {
		return constraint("***", "policy", "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")
	}
	if !json.Valid([]byte(policy)) {
		return &Error{Status: http.StatusBadRequest, Code: "MalformedPolicyDocument", Message: "The policy is not in the valid JSON format."}
	}
	return nil
}

func checkExternalID(role Role, p url.Values, callerARN string) *Error {
	given := p.Get("ExternalId")
	if given != "" {
		if len(given) < 2 || len(given) > 1224 {
			return constraint(given, "externalId", "Member must have length between 2 and 1224")
		}
		if !externalIDPattern.MatchString(given) {
			return constraint(given, "externalId", `Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`)
		}
	}
	if role.ExternalID != "" && given != role.ExternalID {
		return &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "User: " + callerARN + " is not authorized to perform: sts:AssumeRole on resource: " + role.ARN}
	}
	return nil
}

// parseTags reads Tags.member.N.Key / .Value as the Query protocol encodes
// a list of structures.
func parseTags(p url.Values) ([][2]string, *Error) {
	var tags [][2]string
	for i := 1; ; i++ {
		prefix := "Tags.member." + strconv.Itoa(i)
		key, ok := p[prefix+".Key"]
		if !ok {
			break
		}
		tags = append(tags, [2]string{key[0], p.Get(prefix + ".Value")})
	}
	return tags, checkTags(tags)
}

func checkTags(tags [][2]string) *Error {
	if len(tags) > maxTags {
		return constraint("[...]", "tags", "Member must have length less than or equal to 50")
	}
	seen := make(map[string]bool, len(tags))
	for i, tag := range tags {
		key, value := tag[0], tag[1]
		field := fmt.Sprintf("tags.%d.member", i+1)
		switch {
		case utf8.RuneCountInString(key) < 1 || utf8.RuneCountInString(key) > maxTagKeyLen:
			return constraint(key, field+".key", "Member must have length between 1 and 128")
		case !tagPattern.MatchString(key):
			return constraint(key, field+".key", `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		case utf8.RuneCountInString(value) > maxTagValueLen:
			return constraint(value, field+".value", "Member must have length less than or equal to 256")
		case !tagPattern.MatchString(value):
			return constraint(value, field+".value", `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
		case strings.HasPrefix(strings.ToLower(key), "aws:"):
			return &Error{Status: http.StatusBadRequest, Code: "InvalidParameterValue", Message: "Tag keys beginning with 'aws:' are reserved."}
		case seen[strings.ToLower(key)]:
			return &Error{Status: http.StatusBadRequest, Code: "InvalidParameterValue", Message: "Duplicate tag keys found. Please note that Tag keys are case insensitive."}
		}
		seen[strings.ToLower(key)] = true
	}
	return nil
}

func parseTransitive(p url.Values, tags [][2]string) ([]string, *Error) {
	var keys []string
	for i := 1; ; i++ {
		key, ok := p["TransitiveTagKeys.member."+strconv.Itoa(i)]
		if !ok {
			break
		}
		keys = append(keys, key[0])
	}
	if len(keys) > maxTags {
		return nil, constraint("[...]", "transitiveTagKeys", "Member must have length less than or equal to 50")
	}
	for _, k := range keys {
		found := false
		for _, tag := range tags {
			found = found || strings.EqualFold(tag[0], k)
		}
		if !found {
			return nil, &Error{Status: http.StatusBadRequest, Code: "InvalidParameterValue", Message: "The specified transitive tag key must be included in the requested tags."}
		}
	}
	return keys, nil
}

func parseSourceIdentity(source string) (string, *Error) {
	switch {
	case source == "":
		return "", nil
	case len(source) < 2 || len(source) > 64:
		return "", constraint(source, "sourceIdentity", "Member must have length between 2 and 64")
	case !sessionNamePattern.MatchString(source):
		return "", constraint(source, "sourceIdentity", `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	case strings.HasPrefix(strings.ToLower(source), "aws:"):
		return "", validationError("SourceIdentity cannot start with the reserved prefix 'aws:'.")
	}
	return source, nil
}

// packedSize applies the double's documented packing rule (see
// DefaultPackedPolicyLimit) and returns the size as a percentage.
func (s *Server) packedSize(policy string, tags [][2]string) (*int, *Error) {
	if policy == "" && len(tags) == 0 {
		return nil, nil
	}
	size := 0
	if policy != "" {
		var compact bytes.Buffer
		_ = json.Compact(&compact, []byte(policy)) // validity was checked already
		size += (compact.Len() + 1) / 2
	}
	for _, tag := range tags {
		size += len(tag[0]) + len(tag[1])
	}
	percent := (size*100 + s.cfg.PackedPolicyLimit - 1) / s.cfg.PackedPolicyLimit
	if percent > 100 {
		return nil, &Error{Status: http.StatusBadRequest, Code: "PackedPolicyTooLarge", Message: fmt.Sprintf("Packed policy consumes %d%% of allotted space, please use smaller policy.", percent)}
	}
	return &percent, nil
}

// issue creates and remembers session credentials for an accepted request.
func (s *Server) issue(req *sessionRequest) (credentialsXML, assumedRoleUser) {
	now := s.cfg.Now()
	expiration := now.Add(req.duration)
	roleName := req.role.ARN[strings.LastIndex(req.role.ARN, "/")+1:]
	arn := "arn:aws:sts::" + s.cfg.AccountID + ":assumed-role/" + roleName + "/" + req.sessionName
	akid, secret, token := newKeyID("ASIA"), newSecret(), newSessionToken()
	s.mu.Lock()
	s.issued[akid] = issuedCredentials{secret: secret, token: token, expiration: expiration, arn: arn}
	s.mu.Unlock()
	return credentialsXML{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token, Expiration: formatTime(expiration)},
		assumedRoleUser{AssumedRoleID: newKeyID("AROA") + ":" + req.sessionName, Arn: arn}
}
