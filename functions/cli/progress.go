package cli

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/imgpipe/imgpipe/shared/wire"
)

// newBar is a live bar of total steps on a terminal, with the options
// both bars share and extra ones; nil into a pipe or a file, or with
// --json, where plain lines stand in for it.
func (c *command) newBar(total int, description string, extra ...progressbar.Option) *progressbar.ProgressBar {
	if !c.env.Terminal || c.json {
		return nil
	}
	opts := append([]progressbar.Option{progressbar.OptionSetWriter(c.env.Stdout), progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(), progressbar.OptionFullWidth(), progressbar.OptionThrottle(100 * time.Millisecond)}, extra...)
	return progressbar.NewOptions(total, opts...)
}

// endBar completes bar, if there is one, and ends its line.
func (c *command) endBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
		c.out("\n")
	}
}

// progress shows how a request advances while upload --wait polls it.
type progress struct {
	c        *command
	bar      *progressbar.ProgressBar
	start    time.Time
	lastLine time.Time
}

// lineEvery is how often a plain progress line is printed.
const lineEvery = 2 * time.Second

func (c *command) newProgress(total int) *progress {
	return &progress{c: c, start: time.Now(), bar: c.newBar(total, "compressing", progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("images"), progressbar.OptionSetPredictTime(true))}
}

// show shows status s: on the bar, or as a plain line, at most one every
// lineEvery but always the last.
func (p *progress) show(s wire.Status) {
	done := s.ProcessedImages + s.FailedImages
	switch {
	case p.bar != nil:
		_ = p.bar.Set(done)
		if s.FailedImages > 0 {
			p.bar.Describe(fmt.Sprintf("compressing (%d failed)", s.FailedImages))
		}
	case !p.c.json && (time.Since(p.lastLine) >= lineEvery || finished(s)):
		p.lastLine = time.Now()
		rate := float64(done) / time.Since(p.start).Seconds()
		eta := "–"
		if rate > 0 && !finished(s) {
			eta = (time.Duration(float64(s.TotalImages-done)/rate) * time.Second).Round(time.Second).String()
		}
		p.c.out("progress: %d/%d (%d processed, %d failed), %.1f images/s, ETA %s\n",
			done, s.TotalImages, s.ProcessedImages, s.FailedImages, rate, eta)
	}
}

func (p *progress) finish() { p.c.endBar(p.bar) }
