package batch

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// Option names, as every upload form spells them.
const (
	OptWebhookURL = "webhookUrl"
	OptQuality    = "quality"
	OptMaxWidth   = "maxWidth"
	OptMaxHeight  = "maxHeight"
	OptSizes      = "sizes"
)

// optionBounds are the longest values the upload options may have, in
// bytes as sent (a query or form value, or a JSON member's value as
// written, quotes and escapes included): room for the longest valid value
// with spaces and JSON indentation around it, and not much more. A longer
// value is refused before more of it is read.
var optionBounds = map[string]int{
	OptWebhookURL: 4096, // a URL is at most 2048 characters
	OptQuality:    32,
	OptMaxWidth:   32,
	OptMaxHeight:  32,
	OptSizes:      2048, // 5 sizes of 32-character names, 20000×20000
}

// maxOptionBound is the longest bound of any option.
const maxOptionBound = 4096

// OptionBound is the longest value option name may have, in bytes as sent;
// 0 for a name that is not an option.
func OptionBound(name string) int { return optionBounds[name] }

// OptionTooLong is a value of an upload option longer than its bound.
type OptionTooLong struct {
	Option string
	Bound  int
}

func (e *OptionTooLong) Error() string {
	return fmt.Sprintf("%s: longer than %d bytes (the limit of this option)", e.Option, e.Bound)
}

// TooLong is the problem with a value of option longer than its bound.
func TooLong(option string) *OptionTooLong {
	return &OptionTooLong{Option: option, Bound: OptionBound(option)}
}

// Fault is the 400 that refuses the upload, naming the option and its
// bound.
func (e *OptionTooLong) Fault() error {
	return &fault.Error{Kind: fault.Invalid, Message: "invalid upload options", Details: []string{e.Error()}}
}

// checkLength is the problem with a value of option that is longer than
// its bound, nil when it is not.
func checkLength(option string, n int) error {
	if n > OptionBound(option) {
		return TooLong(option)
	}
	return nil
}

// boundedMembers reads a JSON body through, failing with *OptionTooLong as
// soon as a member of the top-level object other than "products" is longer
// than its bound (an unknown member, which the decoder refuses anyway, has
// the longest option's), so that no option's value is read, let alone
// held, much beyond its bound. It tracks only strings, nesting and the
// top-level keys; the decoder reading through it checks the syntax.
type boundedMembers struct {
	r        io.Reader
	depth    int
	str      jsonString
	state    memberState
	key      []byte // the top-level key being read, as written
	option   string // the member whose value is being read
	bound, n int    // its bound (-1: none) and bytes so far
	err      error
}

type memberState int

const (
	beforeKey memberState = iota
	inKey
	afterKey
	inValue
)

// maxKey is the longest top-level key, as written, that is looked up.
const maxKey = 256

func (b *boundedMembers) Read(p []byte) (int, error) { return scanRead(b.r, p, &b.err, b.scan) }

// scanRead reads from r into p and hands each byte to scan; the first
// error scan returns ends the reading there and is kept in *stop, which
// every later read answers.
// jsonString follows a scan through a JSON string's bytes.
type jsonString struct{ in, escape bool }

// step takes byte c inside a string and reports whether c closed it.
func (s *jsonString) step(c byte) (closed bool) {
	switch {
	case s.escape:
		s.escape = false
	case c == '\\':
		s.escape = true
	case c == '"':
		s.in = false
		return true
	}
	return false
}

func scanRead(r io.Reader, p []byte, stop *error, scan func(byte) error) (int, error) {
	if *stop != nil {
		return 0, *stop
	}
	n, err := r.Read(p)
	for i, c := range p[:n] {
		if e := scan(c); e != nil {
			*stop = e
			return i, e
		}
	}
	return n, err
}

func (b *boundedMembers) scan(c byte) error {
	top := b.depth == 1
	if b.state == inValue && top && !b.str.in && (c == ',' || c == '}') {
		b.state = beforeKey
	} else if b.state == inValue && b.bound >= 0 {
		if b.n++; b.n > b.bound {
			return &OptionTooLong{Option: b.option, Bound: b.bound}
		}
	}
	if b.str.in {
		if b.str.step(c) && top && b.state == inKey {
			b.state = afterKey
			return nil
		}
		if top && b.state == inKey && len(b.key) <= maxKey {
			b.key = append(b.key, c)
		}
		return nil
	}
	switch c {
	case '"':
		b.str.in = true
		if top && b.state == beforeKey {
			b.state, b.key = inKey, b.key[:0]
		}
	case '{', '[':
		b.depth++
	case '}', ']':
		b.depth--
	case ':':
		if top && b.state == afterKey {
			b.state, b.n = inValue, 0
			b.option, b.bound = b.memberBound()
		}
	}
	return nil
}

// memberBound is the bound of the member whose key was just read: as the
// decoder matches names, escapes decoded and case ignored.
func (b *boundedMembers) memberBound() (string, int) {
	var name string
	if len(b.key) <= maxKey && json.Unmarshal(append(append([]byte{'"'}, b.key...), '"'), &name) == nil {
		if strings.EqualFold(name, "products") {
			return "products", -1
		}
		for opt, bound := range optionBounds {
			if strings.EqualFold(name, opt) {
				return opt, bound
			}
		}
	}
	return clip(string(b.key), 40), maxOptionBound
}
