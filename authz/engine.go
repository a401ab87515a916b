// Package authz evaluates Cedar policies against the full context of a
// request and returns an allow, deny or step-up decision with the ids of the
// policies that determined it.
//
// Every request is evaluated as principal (User, Service or Anonymous),
// action (Action::"<METHOD>"), resource (Route::"<route name>") and a
// context record in which every key is always present; see buildContext.
// Unlike plain Cedar, a policy that fails to evaluate denies the request:
// skipping it could silently drop a forbid.
package authz

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"ztproxy/identity"
)

// Policy annotations the engine understands.
const (
	annotationID     = "id"
	annotationStepUp = "step_up"
	annotationReason = "reason"
)

// defaultDenyReason is the reason of a deny that no policy determined.
const defaultDenyReason = "no policy permits this request"

// Config configures an Engine.
type Config struct {
	// Policies are the Cedar sources, evaluated together as one policy set.
	Policies []PolicyFile
	// Location is the zone of context.time.hour and weekday; nil means UTC.
	Location *time.Location
	// Now is the clock used when a request carries no time; nil means
	// time.Now. It exists for tests.
	Now func() time.Time
}

// policyInfo is what the engine needs to know about one policy to turn a
// Cedar diagnostic into a Decision.
type policyInfo struct {
	id     string
	forbid bool
	stepUp string // the @step_up value, "" if none
	reason string // the @reason value, "" if none
}

// Engine decides requests against a fixed set of Cedar policies. It is
// immutable and safe for concurrent use; reloading policies means building
// a new Engine.
type Engine struct {
	info  map[cedar.PolicyID]*policyInfo
	index routeIndex
	// permits indexes the permit policies alone, to ask whether any of
	// them could allow a request after a step-up (see permitAfterStepUp).
	permits routeIndex
	// hints are, by route, the @reason sentences of the permits bound to
	// that route (Decision.Hints).
	hints map[string][]string
	count int
	loc   *time.Location
	now   func() time.Time
	// caches remember context records across requests; see recordCache.
	caches *contextCaches
}

// New parses and checks every policy file and returns an Engine. The error
// joins every problem found, each formatted "file.cedar:LINE:COL: message":
// parse errors, invalid @step_up values, empty or duplicate @id values
// (across all files). A policy without @id gets the id "file.cedar:N",
// where N is its 0-based index in its file. New has no side effects.
func New(cfg Config) (*Engine, error) {
	var (
		errs     []error
		ids      []cedar.PolicyID
		policies []*cedar.Policy
		info     = map[cedar.PolicyID]*policyInfo{}
	)
	for _, f := range cfg.Policies {
		list, parseErrs := parseFile(f)
		errs = append(errs, parseErrs...)
		for n, p := range list {
			pi, err := describePolicy(f.Name, n, p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			id := cedar.PolicyID(pi.id)
			if _, dup := info[id]; dup {
				errs = append(errs, fmt.Errorf("%s: duplicate policy id %q", position(p), pi.id))
				continue
			}
			info[id] = pi
			ids = append(ids, id)
			policies = append(policies, p)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("authz: invalid policies:\n%w", errors.Join(errs...))
	}
	e := &Engine{
		info:   info,
		index:  indexPolicies(ids, policies),
		count:  len(policies),
		hints:  map[string][]string{},
		loc:    cfg.Location,
		now:    cfg.Now,
		caches: newContextCaches(),
	}
	if e.loc == nil {
		e.loc = time.UTC
	}
	if e.now == nil {
		e.now = time.Now
	}
	var permitIDs []cedar.PolicyID
	var permits []*cedar.Policy
	for i, id := range ids {
		if info[id].forbid {
			continue
		}
		permitIDs, permits = append(permitIDs, id), append(permits, policies[i])
		if route, ok := scopedRoute(policies[i]); ok && info[id].reason != "" && !slices.Contains(e.hints[route], info[id].reason) {
			e.hints[route] = append(e.hints[route], info[id].reason)
		}
	}
	e.permits = indexPolicies(permitIDs, permits)
	return e, nil
}

// describePolicy reads and checks the annotations of the n-th policy of a
// file.
func describePolicy(file string, n int, p *cedar.Policy) (*policyInfo, error) {
	ann := p.Annotations()
	pi := &policyInfo{
		id:     fmt.Sprintf("%s:%d", file, n),
		forbid: p.Effect() == cedar.Forbid,
		reason: string(ann[annotationReason]),
	}
	if id, ok := ann[annotationID]; ok {
		if strings.TrimSpace(string(id)) == "" {
			return nil, fmt.Errorf("%s: empty @id", position(p))
		}
		pi.id = string(id)
	}
	if v, ok := ann[annotationStepUp]; ok {
		if !pi.forbid {
			return nil, fmt.Errorf("%s: policy %q: @step_up is only meaningful on a forbid policy", position(p), pi.id)
		}
		if !validStepUp(string(v)) {
			return nil, fmt.Errorf("%s: policy %q: invalid @step_up(%q): want \"mfa\", \"webauthn\" or \"acr:<value>\"", position(p), pi.id, string(v))
		}
		pi.stepUp = string(v)
	}
	return pi, nil
}

// validStepUp reports whether v is a step-up requirement the proxy can
// satisfy.
func validStepUp(v string) bool {
	switch v {
	case "mfa", "webauthn":
		return true
	}
	acr, ok := strings.CutPrefix(v, "acr:")
	return ok && strings.TrimSpace(acr) != ""
}

// position formats where a policy starts as "file:LINE:COL".
func position(p *cedar.Policy) string {
	pos := p.Position()
	return fmt.Sprintf("%s:%d:%d", pos.Filename, pos.Line, pos.Column)
}

// PolicyCount returns the number of policies the engine evaluates.
func (e *Engine) PolicyCount() int { return e.count }

// Decide evaluates one request. A deny or step-up is a Decision, not an
// error; the error is non-nil only when no decision could be made, and the
// caller must then fail closed. A policy that fails to evaluate (for
// example a type error) makes the decision Deny, naming the policy.
func (e *Engine) Decide(rc *identity.RequestContext) (dec identity.Decision, err error) {
	if e == nil || rc == nil {
		return identity.Decision{}, errors.New("authz: nil engine or request context")
	}
	if rc.Method != "" && !identity.ValidMethod(rc.Method) {
		// Issue 12.4: the action and context.http.method must be one
		// string; a method in another spelling cannot be decided. (The
		// front doors never pass an empty one; tests of policies do.)
		return identity.Decision{}, errors.New("authz: the method is not an upper-case HTTP method")
	}
	// The evaluator is a dependency we do not control; a panic in it must
	// not take the proxy down, and must not allow.
	defer func() {
		if r := recover(); r != nil {
			dec, err = identity.Decision{}, fmt.Errorf("authz: policy evaluation panicked: %v", r)
		}
	}()
	now := rc.Time
	if now.IsZero() {
		now = e.now()
	}
	ok, diag := e.authorize(e.index.forRoute(rc.Route), rc, now)
	dec = e.decision(ok, diag)
	if dec.Effect == identity.StepUp && !e.permitAfterStepUp(rc, now, dec.StepUp) {
		// Issue 15.4: no permit could allow this request after the
		// step-up, so asking for it would only lead to a deny.
		dec = identity.Decision{Effect: identity.Deny, Reasons: []string{defaultDenyReason}}
	}
	if dec.Effect == identity.Deny && len(dec.PolicyIDs) == 0 {
		dec.Hints = e.hints[rc.Route]
	}
	return dec, nil
}

// permitAfterStepUp reports whether some permit would allow the request
// once the principal has done what the step-up requirements reqs ask:
// "mfa" adds the amr "mfa", "webauthn" the amr "hwk" and "webauthn" (what
// the proxy's own security key check adds), "acr:<v>" sets the acr to v,
// and the authentication time becomes now. Only permits are evaluated;
// the forbids already decided that a step-up is needed.
//
// This can only turn a step-up into a deny, never anything into an allow:
// the request that follows the step-up is decided again from scratch. A
// permit that errors on the assumed context counts as not allowing.
func (e *Engine) permitAfterStepUp(rc *identity.RequestContext, now time.Time, reqs []string) bool {
	stepped := *rc
	p := &stepped.Principal
	p.AMR = slices.Clone(p.AMR)
	addAMR := func(ms ...string) {
		for _, m := range ms {
			if !slices.Contains(p.AMR, m) {
				p.AMR = append(p.AMR, m)
			}
		}
	}
	for _, req := range reqs {
		switch {
		case req == "mfa":
			addAMR("mfa")
		case req == "webauthn":
			addAMR("hwk", "webauthn")
		case strings.HasPrefix(req, "acr:"):
			p.ACR = strings.TrimPrefix(req, "acr:")
		}
	}
	p.AuthTime = now
	ok, diag := e.authorize(e.permits.forRoute(rc.Route), &stepped, now)
	return ok == cedar.Allow && len(diag.Errors) == 0
}

// authorize asks Cedar about rc with the policies of list.
func (e *Engine) authorize(list *policyList, rc *identity.RequestContext, now time.Time) (cedar.Decision, cedar.Diagnostic) {
	entities := &requestEntities{
		uid:       principalUID(&rc.Principal),
		principal: &rc.Principal,
		withAttrs: list.usage.principalAttrs,
	}
	if e.caches != nil {
		entities.cache = e.caches.principals
	}
	req := cedar.Request{
		Principal: entities.uid,
		Action:    actionUID(rc.Method),
		Resource:  types.NewEntityUID(typeRoute, types.String(rc.Route)),
		Context:   buildContext(rc, now, e.loc, list.usage.leaves, e.caches),
	}
	return cedar.Authorize(list, entities, req)
}

// decision turns Cedar's answer into a Decision: allow only if Cedar allows
// and no policy errored; step-up if every forbid that determined a deny
// carries @step_up; otherwise deny.
func (e *Engine) decision(ok cedar.Decision, diag cedar.Diagnostic) identity.Decision {
	if len(diag.Errors) > 0 {
		return e.errorDecision(ok, diag)
	}
	if ok == cedar.Allow {
		return identity.Decision{Effect: identity.Allow, PolicyIDs: e.reasonIDs(diag.Reasons)}
	}
	if len(diag.Reasons) == 0 {
		return identity.Decision{Effect: identity.Deny, Reasons: []string{defaultDenyReason}}
	}
	dec := identity.Decision{Effect: identity.StepUp, PolicyIDs: e.reasonIDs(diag.Reasons)}
	for _, r := range diag.Reasons {
		pi := e.info[r.PolicyID]
		if pi.reason != "" && !slices.Contains(dec.Reasons, pi.reason) {
			dec.Reasons = append(dec.Reasons, pi.reason)
		}
		if pi.stepUp == "" {
			dec.Effect = identity.Deny
		} else if !slices.Contains(dec.StepUp, pi.stepUp) {
			dec.StepUp = append(dec.StepUp, pi.stepUp)
		}
	}
	if dec.Effect == identity.Deny {
		dec.StepUp = nil
	} else {
		slices.Sort(dec.StepUp)
	}
	return dec
}

// errorDecision is the Deny for a request in which at least one policy
// failed to evaluate. Forbids that did apply are reported alongside.
func (e *Engine) errorDecision(ok cedar.Decision, diag cedar.Diagnostic) identity.Decision {
	dec := identity.Decision{Effect: identity.Deny}
	if ok == cedar.Deny {
		dec.PolicyIDs = e.reasonIDs(diag.Reasons)
		for _, r := range diag.Reasons {
			if reason := e.info[r.PolicyID].reason; reason != "" && !slices.Contains(dec.Reasons, reason) {
				dec.Reasons = append(dec.Reasons, reason)
			}
		}
	}
	for _, de := range diag.Errors {
		dec.PolicyIDs = append(dec.PolicyIDs, string(de.PolicyID))
		dec.Reasons = append(dec.Reasons, fmt.Sprintf("policy %s failed to evaluate: %s", de.PolicyID, de.Message))
	}
	return dec
}

// reasonIDs returns the ids of the policies in reasons.
func (e *Engine) reasonIDs(reasons []cedar.DiagnosticReason) []string {
	ids := make([]string, len(reasons))
	for i, r := range reasons {
		ids[i] = string(r.PolicyID)
	}
	return ids
}
