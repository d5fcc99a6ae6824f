package batch

import (
	"fmt"
	"io"
)

// boundedRuns reads a JSON body through, failing with *RunTooLong as soon
// as more than bound bytes come between two structural characters ({ } [ ]
// , :) outside strings at a nesting depth of 2 or less. ParseJSON decodes
// the body piece by piece: the top-level keys, each member's value and each
// element of "products"; this bound is what keeps the decoder from
// buffering more than bound bytes for any one piece (a product, a key, the
// spaces between them), whatever the body's size. It tracks only strings
// and nesting; the decoder reading through it checks the syntax.
type boundedRuns struct {
	r        io.Reader
	bound    int
	depth, n int
	str      jsonString
	err      error
}

// RunTooLong is a piece of a JSON body longer than the bound of one piece.
type RunTooLong struct{ Bound int }

func (e *RunTooLong) Error() string {
	return fmt.Sprintf("more than %d bytes without a separator", e.Bound)
}

func (b *boundedRuns) Read(p []byte) (int, error) { return scanRead(b.r, p, &b.err, b.scan) }

func (b *boundedRuns) scan(c byte) error {
	if b.str.in {
		b.str.step(c)
	} else {
		outer := b.depth <= 2
		switch c {
		case '"':
			b.str.in = true
		case '{', '[':
			b.depth++
		case '}', ']':
			b.depth--
		}
		if outer {
			switch c {
			case '{', '[', '}', ']', ',', ':':
				b.n = 0
				return nil
			}
		}
	}
	if b.n++; b.n > b.bound {
		return &RunTooLong{Bound: b.bound}
	}
	return nil
}
