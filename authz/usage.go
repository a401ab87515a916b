package authz

import (
	"encoding/json"

	"github.com/cedar-policy/cedar-go"
)

// usage is what a set of policies can observe of a request: which context
// leaves (see contextSchema) and whether the principal's attributes.
// Decide builds only that much, because building Cedar records (which
// hash their contents) costs far more than evaluating typical policies.
//
// Leaving out what no policy can observe does not change any outcome: an
// absent key and a present-but-never-read key are indistinguishable to
// every expression the analysis lets through. Anything the analysis does
// not fully understand is treated as "observes everything".
type usage struct {
	leaves         leafMask
	principalAttrs bool
}

// fullUsage observes every context leaf and the principal's attributes.
var fullUsage = usage{leaves: allLeaves, principalAttrs: true}

func (u usage) union(o usage) usage {
	return usage{leaves: u.leaves | o.leaves, principalAttrs: u.principalAttrs || o.principalAttrs}
}

// policyUsage analyses one policy. It walks the policy's JSON (EST) form, a
// generic tree in which every variable is {"Var": name} and every attribute
// access {".": {"left": …, "attr": …}}, so no expression kind can be
// overlooked: an unknown node is just more tree to walk.
//
//   - context.X.Y needs leaf Y of X; context.X used any other way (compared,
//     tested with has, passed to a function) needs all of X; the bare
//     context used any other way needs everything.
//   - An attribute access or has on anything other than the context, its
//     records, or the action and resource variables (entities without
//     attributes) may reach the principal, so it needs its attributes.
func policyUsage(p *cedar.Policy) usage {
	raw, err := p.MarshalJSON()
	if err != nil {
		return fullUsage
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return fullUsage
	}
	var u usage
	walkUsage(tree, &u)
	return u
}

// walkUsage records in u what node observes.
func walkUsage(node any, u *usage) {
	switch n := node.(type) {
	case []any:
		for _, child := range n {
			walkUsage(child, u)
		}
	case map[string]any:
		if isVar(n, "context") {
			u.leaves = allLeaves
			return
		}
		for _, op := range []string{".", "has"} {
			if access, ok := n[op].(map[string]any); ok && len(n) == 1 {
				walkAccess(op, access, u)
				return
			}
		}
		for _, child := range n {
			walkUsage(child, u)
		}
	}
}

// walkAccess records what the attribute access or has test `op` observes.
func walkAccess(op string, access map[string]any, u *usage) {
	left, _ := access["left"].(map[string]any)
	attr, attrOK := access["attr"].(string)
	switch {
	case left == nil || !attrOK:
		*u = fullUsage
	case isVar(left, "context"):
		if op == "." {
			u.leaves |= topMask(attr) // context.X: all of X
		} else {
			u.leaves = allLeaves // context has X
		}
	case isContextTop(left) != "":
		if op == "." {
			u.leaves |= leafBit(isContextTop(left), attr) // context.X.Y
		} else {
			u.leaves |= topMask(isContextTop(left)) // context.X has Y
		}
	case isContextRooted(left):
		// context.X.Y.Z…: Y is a leaf record (claims, posture); the
		// inner access is walked for its own needs.
		walkUsage(left, u)
	case isVar(left, "action") || isVar(left, "resource"):
		// Entities that have no attributes in the request's store.
	default:
		u.principalAttrs = true
		walkUsage(left, u)
	}
}

// isVar reports whether node is the variable name.
func isVar(node map[string]any, name string) bool {
	v, ok := node["Var"].(string)
	return ok && v == name && len(node) == 1
}

// isContextTop returns X if node is exactly context.X, else "".
func isContextTop(node map[string]any) string {
	access, ok := node["."].(map[string]any)
	if !ok || len(node) != 1 {
		return ""
	}
	left, _ := access["left"].(map[string]any)
	attr, _ := access["attr"].(string)
	if left == nil || !isVar(left, "context") {
		return ""
	}
	return attr
}

// isContextRooted reports whether node is a chain of attribute accesses
// starting at the context variable, so its value is a context record or
// value rather than an entity.
func isContextRooted(node map[string]any) bool {
	for {
		if isVar(node, "context") {
			return true
		}
		access, ok := node["."].(map[string]any)
		if !ok || len(node) != 1 {
			return false
		}
		node, _ = access["left"].(map[string]any)
		if node == nil {
			return false
		}
	}
}
