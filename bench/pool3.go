package main

import "fmt"

// pool3Policy lets the bench user reach the ztproxy-pool3 route, as
// eng-uses-app does the app route.
const pool3Policy = `
@id("eng-uses-pool3")
permit (principal, action in [Action::"GET", Action::"HEAD", Action::"POST"], resource == Route::"pool3")
when { principal in Group::"eng" };
`

// pool3Route starts two more upstream processes and returns the route of
// the ztproxy-pool3 candidate (issue 18): the first upstream and the two
// new ones, least_request, with active health checks and outlier
// detection, as a production route with several instances would have.
func (e *env) pool3Route(upURL string) (string, error) {
	urls := []string{fmt.Sprintf("%q", upURL)}
	for i := 2; i <= 3; i++ {
		p, addr, err := startProcess(fmt.Sprintf("upstream-%d", i), e.logs, []string{roleEnv + "=upstream"}, true, e.self, "-addr", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		e.track(p)
		urls = append(urls, fmt.Sprintf("%q", "http://"+addr))
	}
	return fmt.Sprintf("  - {name: pool3, host: 127.0.0.1, path_prefix: /pool, upstreams: [%s, %s, %s], lb_policy: least_request, auth: browser,\n"+
		"     health_check: {path: /healthz, interval: 5s}, outlier_detection: {consecutive_failures: 5, ejection_time: 30s}}\n",
		urls[0], urls[1], urls[2]), nil
}
