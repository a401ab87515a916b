// Package adminapi is ztproxy's operator API (issue 17): JSON over HTTPS
// for automation (a SOAR playbook, a Lambda behind EventBridge routing a
// GuardDuty finding) to flag principals, end their sessions and see or
// revoke devices, on every replica within a second.
//
// It is served by the portal under /.ztp/admin/v1/ on the TLS listener,
// never over plain HTTP and never anonymously: the portal authenticates
// the caller (a verified client certificate, or a bearer token from a
// configured IdP) and Allowed decides whether that operator may act
// (listed SPIFFE ids, or membership of an admin group). Every action is
// logged with the operator's identity, and the portal writes its audit
// line with the operator as the principal.
package adminapi
