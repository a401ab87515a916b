//go:build unix

package testenv

import "syscall"

func (p *nodeProcess) signalStop() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *nodeProcess) signalCont() error { return p.cmd.Process.Signal(syscall.SIGCONT) }
