package main

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

// progress shows a bar on stderr when it is a terminal, and nothing otherwise
// (scripts and logs get the summary line only).
type progress struct{ bar *progressbar.ProgressBar }

func (a *app) newProgress(total int, what string) *progress {
	if !isTerminal(a.stderr) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)}
}

func (p *progress) set(n int) {
	if p.bar != nil {
		_ = p.bar.Set(n)
	}
}

func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

var _ io.Writer = (*progressbar.ProgressBar)(nil)

// byteProgress shows bytes processed on stderr when it is a terminal.
type byteProgress struct{ bar *progressbar.ProgressBar }

func (a *app) newByteProgress(what string) *byteProgress {
	if !isTerminal(a.stderr) {
		return &byteProgress{}
	}
	return &byteProgress{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)}
}

func (p *byteProgress) set(n int64) {
	if p.bar != nil {
		_ = p.bar.Set64(n)
	}
}

func (p *byteProgress) setTotal(n int64) {
	if p.bar != nil && p.bar.GetMax64() != n {
		p.bar.ChangeMax64(n)
	}
}

func (p *byteProgress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
