package deploy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A reader of the filter language of Cloud Logging (the Logging query
// language) and of Cloud Monitoring's time series filters, as far as
// terraform/monitoring.tf writes them: comparisons field OP value (OP one
// of = != : > < >= <= =~ !~), a value group field = ("a" OR "b"), global
// restrictions (a value alone), AND, OR, NOT, terms side by side (an
// implicit AND) and parentheses. The Logging query language binds NOT
// tightest, then OR, then AND: "a" OR NOT "b" AND NOT "c" OR "d" means
// ("a" OR (NOT "b")) AND ((NOT "c") OR "d") (Logging query language,
// Boolean operators). Values are matched against a LogEntry as JSON: a
// comparison on a field the entry lacks is false.

type lqlToken struct {
	kind string // "word", "string", "op", "(", ")", "AND", "OR", "NOT"
	text string
}

func lqlLex(s string) ([]lqlToken, error) {
	var out []lqlToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			out = append(out, lqlToken{kind: string(c)})
			i++
		case c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, lqlToken{kind: "string", text: b.String()})
			i = j + 1
		case strings.ContainsRune("=!:<>", rune(c)):
			op := string(c)
			if i+1 < len(s) && (s[i+1] == '=' || s[i+1] == '~') && c != ':' {
				op = s[i : i+2]
			}
			if op == "!" {
				return nil, fmt.Errorf("lone ! at %d", i)
			}
			out = append(out, lqlToken{kind: "op", text: op})
			i += len(op)
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()\"=!:<>", rune(s[j])) {
				j++
			}
			w := s[i:j]
			switch w {
			case "AND", "OR", "NOT":
				out = append(out, lqlToken{kind: w})
			default:
				out = append(out, lqlToken{kind: "word", text: w})
			}
			i = j
		}
	}
	return out, nil
}

// lqlNode is a parsed filter; match reports whether entry satisfies it.
type lqlNode interface {
	match(entry map[string]any) bool
}

type (
	lqlAnd []lqlNode
	lqlOr  []lqlNode
	lqlNot struct{ n lqlNode }
	// lqlCmp compares a field with a value, or with each value of a group.
	lqlCmp struct {
		field []string
		op    string
		rhs   lqlNode // lqlValue leaves under AND, OR, NOT
	}
	lqlValue  struct{ v string }
	lqlGlobal struct{ v string }
	// lqlLeaf is a value of a group, compared as the enclosing comparison says.
	lqlLeaf struct {
		cmp *lqlCmp
		v   string
	}
)

func (a lqlAnd) match(e map[string]any) bool {
	for _, n := range a {
		if !n.match(e) {
			return false
		}
	}
	return true
}

func (o lqlOr) match(e map[string]any) bool {
	for _, n := range o {
		if n.match(e) {
			return true
		}
	}
	return false
}

func (n lqlNot) match(e map[string]any) bool { return !n.n.match(e) }

func (v lqlValue) match(map[string]any) bool { panic("a value is matched through its comparison") }

func (c *lqlCmp) match(e map[string]any) bool { return bindValues(c.rhs, c).match(e) }

func (l lqlLeaf) match(e map[string]any) bool {
	got, ok := lookupField(e, l.cmp.field)
	if !ok {
		return false
	}
	return compareValue(got, l.cmp.op, l.v)
}

func (g lqlGlobal) match(e map[string]any) bool { return containsValue(e, g.v) }

// bindValues turns the value leaves of a comparison's right side into
// comparisons of the field.
func bindValues(n lqlNode, c *lqlCmp) lqlNode {
	switch x := n.(type) {
	case lqlValue:
		return lqlLeaf{cmp: c, v: x.v}
	case lqlAnd:
		out := lqlAnd{}
		for _, m := range x {
			out = append(out, bindValues(m, c))
		}
		return out
	case lqlOr:
		out := lqlOr{}
		for _, m := range x {
			out = append(out, bindValues(m, c))
		}
		return out
	case lqlNot:
		return lqlNot{bindValues(x.n, c)}
	}
	return n
}

func lookupField(e map[string]any, path []string) (any, bool) {
	var cur any = e
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// compareValue compares a JSON value with a filter's value: numbers as
// numbers, strings without regard to case (the language's string
// comparisons are not case sensitive), : as "has" (a substring).
func compareValue(got any, op, want string) bool {
	if f, ok := got.(float64); ok {
		w, err := strconv.ParseFloat(want, 64)
		if err == nil {
			switch op {
			case "=", ":":
				return f == w
			case "!=":
				return f != w
			case ">":
				return f > w
			case "<":
				return f < w
			case ">=":
				return f >= w
			case "<=":
				return f <= w
			}
		}
	}
	var s string
	switch x := got.(type) {
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	default:
		return false
	}
	switch op {
	case "=":
		return strings.EqualFold(s, want)
	case "!=":
		return !strings.EqualFold(s, want)
	case ":":
		return strings.Contains(strings.ToLower(s), strings.ToLower(want))
	case "=~", "!~":
		re, err := regexp.Compile(want)
		return err == nil && re.MatchString(s) == (op == "=~")
	case ">":
		return s > want
	case "<":
		return s < want
	case ">=":
		return s >= want
	case "<=":
		return s <= want
	}
	return false
}

func containsValue(v any, want string) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, w := range x {
			if containsValue(w, want) {
				return true
			}
		}
	case []any:
		for _, w := range x {
			if containsValue(w, want) {
				return true
			}
		}
	default:
		return compareValue(x, ":", want)
	}
	return false
}

// lqlFilter is a parsed filter and the levels (the whole filter, each
// parenthesised group) that join terms with both AND and OR: what such a
// level means depends on precedence.
type lqlFilter struct {
	root  lqlNode
	mixed []string
}

type lqlParser struct {
	toks  []lqlToken
	pos   int
	src   string
	mixed []string
}

func parseFilter(s string) (lqlFilter, error) {
	toks, err := lqlLex(s)
	if err != nil {
		return lqlFilter{}, err
	}
	if len(toks) == 0 {
		return lqlFilter{}, fmt.Errorf("empty filter")
	}
	p := &lqlParser{toks: toks, src: s}
	root, err := p.group(p.comparison, "the filter")
	if err != nil {
		return lqlFilter{}, err
	}
	if p.pos != len(p.toks) {
		return lqlFilter{}, fmt.Errorf("unexpected %s after the filter", p.describe(p.pos))
	}
	return lqlFilter{root: root, mixed: p.mixed}, nil
}

func (p *lqlParser) peek() lqlToken {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return lqlToken{kind: "end"}
}

func (p *lqlParser) describe(i int) string {
	if i >= len(p.toks) {
		return "end of filter"
	}
	t := p.toks[i]
	if t.text != "" {
		return fmt.Sprintf("%s %q", t.kind, t.text)
	}
	return t.kind
}

// group reads terms joined by AND, OR or nothing (an implicit AND) up to
// a closing parenthesis or the end, and builds them with OR binding
// tighter than AND.
func (p *lqlParser) group(leaf func() (lqlNode, error), where string) (lqlNode, error) {
	first, err := p.unary(leaf, where)
	if err != nil {
		return nil, err
	}
	terms := []lqlNode{first}
	var ops []string
	for {
		t := p.peek()
		if t.kind == "end" || t.kind == ")" {
			break
		}
		op := "AND"
		if t.kind == "AND" || t.kind == "OR" {
			op = t.kind
			p.pos++
		}
		n, err := p.unary(leaf, where)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
		terms = append(terms, n)
	}
	hasAnd, hasOr := false, false
	for _, op := range ops {
		hasAnd = hasAnd || op == "AND"
		hasOr = hasOr || op == "OR"
	}
	if hasAnd && hasOr {
		p.mixed = append(p.mixed, where)
	}
	and := lqlAnd{}
	or := lqlOr{terms[0]}
	for i, op := range ops {
		if op == "OR" {
			or = append(or, terms[i+1])
			continue
		}
		and = append(and, collapseOr(or))
		or = lqlOr{terms[i+1]}
	}
	and = append(and, collapseOr(or))
	if len(and) == 1 {
		return and[0], nil
	}
	return and, nil
}

func collapseOr(o lqlOr) lqlNode {
	if len(o) == 1 {
		return o[0]
	}
	return o
}

func (p *lqlParser) unary(leaf func() (lqlNode, error), where string) (lqlNode, error) {
	switch p.peek().kind {
	case "NOT":
		p.pos++
		n, err := p.unary(leaf, where)
		if err != nil {
			return nil, err
		}
		return lqlNot{n}, nil
	case "(":
		start := p.pos
		p.pos++
		n, err := p.group(leaf, "the group at token "+strconv.Itoa(start+1)+" of "+where)
		if err != nil {
			return nil, err
		}
		if p.peek().kind != ")" {
			return nil, fmt.Errorf("unclosed parenthesis: %s", p.describe(p.pos))
		}
		p.pos++
		return n, nil
	}
	return leaf()
}

// comparison reads field OP value, field OP (values…), or a value alone.
func (p *lqlParser) comparison() (lqlNode, error) {
	t := p.peek()
	if t.kind != "word" && t.kind != "string" {
		return nil, fmt.Errorf("expected a comparison, found %s", p.describe(p.pos))
	}
	p.pos++
	if p.peek().kind == "(" && t.kind == "word" {
		return nil, fmt.Errorf("function %s( is not read by this checker", t.text)
	}
	if p.peek().kind != "op" {
		return lqlGlobal{t.text}, nil
	}
	if t.kind != "word" {
		return nil, fmt.Errorf("a quoted string %q before an operator", t.text)
	}
	op := p.peek().text
	p.pos++
	c := &lqlCmp{field: strings.Split(t.text, "."), op: op}
	var err error
	if p.peek().kind == "(" {
		p.pos++
		c.rhs, err = p.group(p.value, "the values of "+t.text)
		if err != nil {
			return nil, err
		}
		if p.peek().kind != ")" {
			return nil, fmt.Errorf("unclosed value group of %s", t.text)
		}
		p.pos++
	} else {
		c.rhs, err = p.value()
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *lqlParser) value() (lqlNode, error) {
	t := p.peek()
	if t.kind != "word" && t.kind != "string" {
		return nil, fmt.Errorf("expected a value, found %s", p.describe(p.pos))
	}
	p.pos++
	if p.peek().kind == "op" {
		return nil, fmt.Errorf("a comparison where a value was expected (%s)", t.text)
	}
	if p.peek().kind == "(" && t.kind == "word" {
		return nil, fmt.Errorf("function %s( is not read by this checker", t.text)
	}
	return lqlValue{t.text}, nil
}

// The reader follows the documented precedence, and finds the levels
// whose meaning depends on it.
func TestLogQueryReader(t *testing.T) {
	entry := map[string]any{"a": "x", "b": "y", "n": 3.0, "s": "Image Failed, will retry"}
	for _, c := range []struct {
		filter string
		want   bool
		mixed  int
	}{
		{`a="x"`, true, 0},
		{`a="X"`, true, 0},
		{`a="z"`, false, 0},
		{`missing="x"`, false, 0},
		{`NOT missing="x"`, true, 0},
		{`a="x" AND b="y"`, true, 0},
		{`a="x" b="z"`, false, 0},
		{`a="z" OR b="y"`, true, 0},
		{`a=("z" OR "x")`, true, 0},
		{`a=("z" OR "w")`, false, 0},
		{`n>2 AND n<=3`, true, 0},
		{`s:"image failed"`, true, 0},
		{`s="image failed"`, false, 0},
		{`s=~"^Image"`, true, 0},
		{`"will retry"`, true, 0},
		// OR binds tighter: a="z" AND (b="y" OR a="x"): false.
		{`a="z" AND b="y" OR a="x"`, false, 1},
		// Would be true were AND tighter.
		{`b="y" OR a="z" AND a="q"`, false, 1},
		{`(a="x" AND b="z") OR b="y"`, true, 0},
		{`a="x" AND b="z" OR b="w"`, false, 1},
		// The documentation's example: ("a" OR (NOT "b")) AND ((NOT "c") OR "d").
		{`"x" OR NOT "y" AND NOT "Image" OR "q"`, false, 1},
		{`(a="x" OR b="q") AND (a="x" b="y")`, true, 0},
		{`a=("x" AND "y" OR "z")`, false, 1},
		{`a="x" b="y" OR b="z"`, true, 1},
	} {
		f, err := parseFilter(c.filter)
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		if got := f.root.match(entry); got != c.want {
			t.Errorf("%s matched %v, want %v", c.filter, got, c.want)
		}
		if len(f.mixed) != c.mixed {
			t.Errorf("%s: %d levels mix AND and OR (%v), want %d", c.filter, len(f.mixed), f.mixed, c.mixed)
		}
	}
	for _, bad := range []string{``, `a=`, `(a="x"`, `a="x")`, `a="x" AND`, `"x"="y"`, `a=starts_with("x")`, `a="x`} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
