package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// traceCand is one tracing candidate (issue 19): ztproxy-browser's setup
// in a process of its own with a tracing: block at this sampling ratio.
type traceCand struct {
	name  string
	ratio string // sample_ratio as written in the YAML
	addr  string // listen address, registered with the OP before it starts
}

// traceCands returns the tracing candidates with fresh listen addresses.
func traceCands() []traceCand {
	return []traceCand{
		{name: "ztproxy-trace1", ratio: "0.01", addr: freeAddr()},
		{name: "ztproxy-trace100", ratio: "1", addr: freeAddr()},
	}
}

// otlpSink is a load sink for OTLP/HTTP trace exports: it accepts POST
// /v1/traces, reads and discards the body and answers 200 with an empty
// ExportTraceServiceResponse. It is not a component under test (no real
// collector is needed to measure what exporting costs ztproxy, and a real
// one would compete for the same CPUs); it counts what it received so the
// report shows that spans were actually exported.
type otlpSink struct {
	srv      *http.Server
	url      string
	requests atomic.Int64
	bytes    atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String() + "/v1/traces"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	return s, nil
}

// startTraceCandidates starts, for each tracing candidate that will be
// measured, an OTLP sink and a ztproxy with zc's routes and policies plus a
// tracing block (otlp_http to the sink), signs alice in and returns the
// candidates. The sinks are closed by the returned stop function, after
// their counts have gone into rep.TraceExports.
func (e *env) startTraceCandidates(tcs []traceCand, zc ztpConfig, opp *op, alice opUser, rep *Report) ([]*Candidate, func(), error) {
	var cands []*Candidate
	var sinks []*otlpSink
	var once sync.Once
	stop := func() {
		once.Do(func() {
			for i, s := range sinks {
				if s.url == "" {
					continue
				}
				s.srv.Close()
				if rep.TraceExports == nil {
					rep.TraceExports = map[string]TraceExport{}
				}
				te := TraceExport{Requests: s.requests.Load(), Bytes: s.bytes.Load()}
				rep.TraceExports[tcs[i].name] = te
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the OTLP sink received %d export requests, %d bytes", tcs[i].name, te.Requests, te.Bytes))
			}
		})
	}
	for _, tc := range tcs {
		if e.o.only != nil && !e.o.only[tc.name] {
			cands = append(cands, &Candidate{Name: tc.name, Tool: "wrk", Unavailable: "skipped (-only)"})
			sinks = append(sinks, &otlpSink{srv: &http.Server{}})
			continue
		}
		sink, err := startOTLPSink()
		if err != nil {
			return nil, stop, err
		}
		sinks = append(sinks, sink)
		tz := zc
		tz.listen, tz.admin, tz.external = tc.addr, freeAddr(), "http://"+tc.addr
		tz.stateDir = filepath.Join(e.work, tc.name)
		tz.extra = fmt.Sprintf("tracing: {enabled: true, exporter: otlp_http, endpoint: %q, sample_ratio: %s, service_name: %s}\n",
			sink.url, tc.ratio, tc.name)
		p, err := e.startZtproxy(tc.name, tz)
		if err != nil {
			return nil, stop, err
		}
		cookie, err := browserCookie(opp, tc.addr, alice)
		if err != nil {
			return nil, stop, err
		}
		cands = append(cands, &Candidate{Name: tc.name, Tool: "wrk",
			Desc: fmt.Sprintf("ztproxy-browser's setup in its own process with tracing on, sample_ratio %s, OTLP/HTTP to a discarding sink", tc.ratio),
			URL:  "http://" + tc.addr + "/app/hello", headers: map[string]string{"Cookie": cookie}, pids: pidsOf(p)})
	}
	return cands, stop, nil
}

// TraceExport is what a tracing candidate's OTLP sink received.
type TraceExport struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}
