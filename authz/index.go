package authz

import (
	"iter"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// policyList is an ordered subset of the engine's policies that Cedar
// evaluates for one request. It implements cedar.PolicyIterator; its
// iterator is built once so that a decision does not allocate one.
type policyList struct {
	ids      []cedar.PolicyID
	policies []*cedar.Policy
	seq      iter.Seq2[cedar.PolicyID, *cedar.Policy]
	// usage is what these policies can observe of a request.
	usage usage
}

var _ cedar.PolicyIterator = (*policyList)(nil)

// All implements cedar.PolicyIterator.
func (l *policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return l.seq }

func (l *policyList) add(id cedar.PolicyID, p *cedar.Policy, u usage) {
	l.ids = append(l.ids, id)
	l.policies = append(l.policies, p)
	l.usage = l.usage.union(u)
}

func (l *policyList) seal() *policyList {
	l.seq = func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for i, id := range l.ids {
			if !yield(id, l.policies[i]) {
				return
			}
		}
	}
	return l
}

// routeIndex selects, by the request's route, the policies that can apply.
// A policy whose scope is `resource == Route::"r"` or `resource in
// Route::"r"` can only apply to route r: routes have no parents in the
// request's entity store (see requestEntities), so "in" means "==" for
// them. Skipping such policies is exact: their scope is the first
// conjunct Cedar evaluates, so a mismatched scope is false without ever
// reaching the condition, and so it can neither decide nor error.
type routeIndex struct {
	byRoute map[string]*policyList
	// anyRoute holds the policies not bound to one route; it is the list
	// for routes no policy names.
	anyRoute *policyList
}

// indexPolicies builds the route index over policies in evaluation order.
func indexPolicies(ids []cedar.PolicyID, policies []*cedar.Policy) routeIndex {
	routeOf := make([]string, len(policies))
	bound := make([]bool, len(policies))
	var routes []string
	seen := map[string]bool{}
	for i, p := range policies {
		route, ok := scopedRoute(p)
		if !ok {
			continue
		}
		routeOf[i], bound[i] = route, true
		if !seen[route] {
			seen[route] = true
			routes = append(routes, route)
		}
	}
	uses := make([]usage, len(policies))
	for i, p := range policies {
		uses[i] = policyUsage(p)
	}
	idx := routeIndex{byRoute: make(map[string]*policyList, len(routes)), anyRoute: &policyList{}}
	for _, r := range routes {
		idx.byRoute[r] = &policyList{}
	}
	for i, p := range policies {
		if bound[i] {
			idx.byRoute[routeOf[i]].add(ids[i], p, uses[i])
			continue
		}
		idx.anyRoute.add(ids[i], p, uses[i])
		for _, r := range routes {
			idx.byRoute[r].add(ids[i], p, uses[i])
		}
	}
	idx.anyRoute.seal()
	for _, l := range idx.byRoute {
		l.seal()
	}
	return idx
}

// forRoute returns the policies that can apply to a request for route.
func (idx *routeIndex) forRoute(route string) *policyList {
	if l, ok := idx.byRoute[route]; ok {
		return l
	}
	return idx.anyRoute
}

// scopedRoute reports the route a policy's resource scope binds it to.
func scopedRoute(p *cedar.Policy) (string, bool) {
	var uid types.EntityUID
	switch s := p.AST().Resource.(type) {
	case xast.ScopeTypeEq:
		uid = s.Entity
	case xast.ScopeTypeIn:
		uid = s.Entity
	default:
		return "", false
	}
	if uid.Type != typeRoute {
		return "", false
	}
	return string(uid.ID), true
}
