// Command pause is the sandbox ("pause") container of the real node that ebb's tests and `ebb dev --node`
// run: containerd's sandbox_image names its image (imagebuild.PauseRef, ebb.local/pause:3.10, built by
// `make images`). It holds the pod's namespaces by doing nothing until SIGTERM or SIGINT, then exits 0. As
// PID 1 of a pod that shares its process namespace it also reaps the orphans handed to it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "-v" || os.Args[1] == "--version" {
			fmt.Println("ebb pause")
			return
		}
		fmt.Fprintln(os.Stderr, "usage: pause (waits for SIGTERM or SIGINT, then exits 0)")
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		reap()
	}
}

// reap waits for every child that has exited, without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
