package testenv

import "testing"

// Pause freezes the OP with SIGSTOP: the kernel still accepts connections on
// its port but nothing answers, like a hung identity provider. Resume (or the
// end of the test) thaws it.
func (p *OIDCProvider) Pause(t testing.TB) {
	t.Helper()
	p.proc.pause(t)
}

// Resume thaws an OP frozen by Pause.
func (p *OIDCProvider) Resume(t testing.TB) {
	t.Helper()
	p.proc.resume(t)
}

// Stop ends the OP process; its port then refuses connections, like an
// identity provider that is down. Stopping twice is harmless.
func (p *OIDCProvider) Stop() { p.proc.stop() }

// Pause freezes dynalite with SIGSTOP: requests are accepted but never
// answered, like a hung DynamoDB endpoint. Resume (or the end of the test)
// thaws it.
func (d *Dynalite) Pause(t testing.TB) {
	t.Helper()
	d.current().pause(t)
}

// Resume thaws dynalite frozen by Pause.
func (d *Dynalite) Resume(t testing.TB) {
	t.Helper()
	d.current().resume(t)
}

// current is the running dynalite process (Restart replaces it).
func (d *Dynalite) current() *nodeProcess {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proc
}

// pause stops the process with SIGSTOP and makes sure it is thawed before
// the test's other cleanups stop it.
func (p *nodeProcess) pause(t testing.TB) {
	t.Helper()
	if err := p.signalStop(); err != nil {
		t.Fatalf("testenv: pausing %s: %v", p.name, err)
	}
	t.Cleanup(func() { _ = p.signalCont() })
}

func (p *nodeProcess) resume(t testing.TB) {
	t.Helper()
	if err := p.signalCont(); err != nil {
		t.Fatalf("testenv: resuming %s: %v", p.name, err)
	}
}
