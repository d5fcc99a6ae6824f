package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/cloudlog"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// The log lines the deployed functions write, for the monitoring checks.
//
// Every logging call of the functions' code (the functions package and
// shared/pipeline) is found in the source: its level, its message and the
// names of its attributes, those of the logger it is called on included
// (With chains, pipeline.ImageLog, the trace). Each is then written again
// through the production logger (cloudlog.New, with pipeline.ImageLog where
// the code uses it) with those attribute names and sample values, and
// wrapped as the LogEntry Cloud Logging makes of a Cloud Run function's
// structured line. Which function writes a line follows from the Go
// function it is in (functionsOfCode).

// logSources are the packages whose lines the deployed functions write.
var logSources = []string{"../../functions", "../../shared/pipeline"}

// functionsOfCode names, for each Go function that logs, the deployed
// functions whose requests run it. A logging function missing here fails
// the scan, so a new line is placed before the metrics are checked.
var functionsOfCode = map[string][]string{
	"functions.compressImage":  {"compressImage"},
	"functions.deadLetter":     {"deadLetter"},
	"functions.deliverWebhook": {"deliverWebhook"},
	"functions.sweep":          {"sweep"},
	// Every HTTP function answers its errors through writeError.
	"functions.writeErrorFor": {"api", "deliverWebhook", "sweep"},
	"functions.serveReport":   {"api"},

	"pipeline.Service.Submit":       {"api"},
	"pipeline.Service.Compress":     {"compressImage"},
	"pipeline.Service.fetch":        {"compressImage"},
	"pipeline.Service.noteHostWait": {"compressImage"},
	"pipeline.Service.storeThumb":   {"compressImage"},
	// A request finishes with its last image: compressed, dead-lettered
	// or given up by the sweep.
	"pipeline.Service.finishIfDone":   {"compressImage", "deadLetter", "sweep"},
	"pipeline.Service.DeliverWebhook": {"deliverWebhook"},
	"pipeline.logSweep":               {"sweep"},
	"pipeline.Service.sweepRequest":   {"sweep"},
}

// attrValues are the values a string attribute takes where a filter reads
// it: a line is written once for each.
var attrValues = map[string][]string{
	"outcome": {batch.WebhookDelivering, batch.WebhookDelivered, batch.WebhookFailed},
}

// codeLogCall is one logging call of the code.
type codeLogCall struct {
	Pos     string // file:line
	Func    string // package.Func or package.Type.Method
	Level   slog.Level
	Message string
	Steps   []logStep // how the logger is made, in order
	Args    []logAttr // the call's own attributes
}

// logStep is one step from the base logger to the one a line is written
// with: pipeline.ImageLog, the trace, or With.
type logStep struct {
	Kind  string // "image", "trace", "with"
	Attrs []logAttr
}

type logAttr struct {
	Key     string
	Numeric bool // an integer in the code: a count, a size, a duration in ms
}

// scanLogCalls finds every logging call in the log sources.
func scanLogCalls(t *testing.T) []codeLogCall {
	t.Helper()
	var calls []codeLogCall
	fset := token.NewFileSet()
	for _, dir := range logSources {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				c, err := scanFunc(fset, file.Name.Name, fd)
				if err != nil {
					t.Fatal(err)
				}
				calls = append(calls, c...)
			}
		}
	}
	if len(calls) == 0 {
		t.Fatal("no logging call found in the functions' code")
	}
	return calls
}

func funcKey(pkg string, fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return pkg + "." + fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return pkg + "." + id.Name + "." + fd.Name.Name
	}
	return pkg + "." + fd.Name.Name
}

var logLevels = map[string]slog.Level{"Debug": slog.LevelDebug, "Info": slog.LevelInfo, "Warn": slog.LevelWarn, "Error": slog.LevelError}

// scanFunc finds the logging calls of one function: calls of Debug, Info,
// Warn or Error on a logger, that is the package's logger, a *slog.Logger
// parameter, a Log field (s.Log), pipeline.ImageLog or withTrace of a
// logger, L.With(...) of a logger, or a variable assigned one of these.
func scanFunc(fset *token.FileSet, pkg string, fd *ast.FuncDecl) ([]codeLogCall, error) {
	loggers := map[string][]logStep{}
	if fd.Type.Params != nil {
		for _, p := range fd.Type.Params.List {
			if st, ok := p.Type.(*ast.StarExpr); ok && exprString(st.X) == "slog.Logger" {
				for _, n := range p.Names {
					loggers[n.Name] = nil
				}
			}
		}
	}
	var resolve func(e ast.Expr) ([]logStep, bool, error)
	resolve = func(e ast.Expr) ([]logStep, bool, error) {
		switch x := e.(type) {
		case *ast.Ident:
			if steps, ok := loggers[x.Name]; ok {
				return steps, true, nil
			}
			return nil, x.Name == "logger" && pkg == "functions", nil
		case *ast.SelectorExpr:
			return nil, x.Sel.Name == "Log", nil
		case *ast.ParenExpr:
			return resolve(x.X)
		case *ast.CallExpr:
			name := exprString(x.Fun)
			switch {
			case strings.HasSuffix(name, ".With"):
				base, ok, err := resolve(x.Fun.(*ast.SelectorExpr).X)
				if !ok || err != nil {
					return nil, false, err
				}
				attrs, err := keyValues(x.Args)
				if err != nil {
					return nil, false, fmt.Errorf("%s: %s: %w", fset.Position(x.Pos()), name, err)
				}
				return append(append([]logStep{}, base...), logStep{Kind: "with", Attrs: attrs}), true, nil
			case name == "ImageLog" || name == "pipeline.ImageLog", name == "withTrace":
				base, ok, err := resolve(x.Args[0])
				if !ok || err != nil {
					return nil, false, err
				}
				kind := "trace"
				if strings.HasSuffix(name, "ImageLog") {
					kind = "image"
				}
				return append(append([]logStep{}, base...), logStep{Kind: kind}), true, nil
			}
		}
		return nil, false, nil
	}
	var out []codeLogCall
	var failed error
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if failed != nil {
			return false
		}
		switch x := n.(type) {
		case *ast.AssignStmt:
			for i, lhs := range x.Lhs {
				id, ok := lhs.(*ast.Ident)
				if !ok || len(x.Rhs) != len(x.Lhs) {
					continue
				}
				steps, ok, err := resolve(x.Rhs[i])
				if err != nil {
					failed = err
					return false
				}
				if ok {
					loggers[id.Name] = steps
				}
			}
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			level, isLevel := logLevels[sel.Sel.Name]
			if !isLevel {
				return true
			}
			steps, ok, err := resolve(sel.X)
			if err != nil {
				failed = err
				return false
			}
			if !ok {
				return true
			}
			pos := fset.Position(x.Pos())
			where := filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)
			if len(x.Args) == 0 {
				failed = fmt.Errorf("%s: a logging call without a message", where)
				return false
			}
			msg, ok := x.Args[0].(*ast.BasicLit)
			if !ok || msg.Kind != token.STRING {
				failed = fmt.Errorf("%s: the message of a logging call is not a string literal: the checks cannot read it", where)
				return false
			}
			text, _ := strconv.Unquote(msg.Value)
			attrs, err := keyValues(x.Args[1:])
			if err != nil {
				failed = fmt.Errorf("%s: %w", where, err)
				return false
			}
			out = append(out, codeLogCall{Pos: where, Func: funcKey(pkg, fd), Level: level, Message: text, Steps: steps, Args: attrs})
		}
		return true
	})
	return out, failed
}

// keyValues reads the attribute names of alternating key, value arguments.
func keyValues(args []ast.Expr) ([]logAttr, error) {
	if len(args)%2 != 0 {
		return nil, fmt.Errorf("attributes are not key, value pairs")
	}
	var out []logAttr
	for i := 0; i < len(args); i += 2 {
		var key string
		switch k := args[i].(type) {
		case *ast.BasicLit:
			if k.Kind != token.STRING {
				return nil, fmt.Errorf("attribute key %s is not a string", exprString(k))
			}
			key, _ = strconv.Unquote(k.Value)
		default:
			if s := exprString(k); s == "TraceKey" || s == "pipeline.TraceKey" {
				key = pipeline.TraceKey
			} else {
				return nil, fmt.Errorf("attribute key %s is neither a string literal nor pipeline.TraceKey", s)
			}
		}
		out = append(out, logAttr{Key: key, Numeric: integerExpr(args[i+1])})
	}
	return out, nil
}

// integerExpr reports whether a value expression is an integer as the code
// writes them: a length, milliseconds, a difference or a sum, a literal,
// or a field or variable named as a size, an attempt, a count, a status
// code or a duration in ms.
func integerExpr(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return x.Kind == token.INT
	case *ast.BinaryExpr:
		return x.Op == token.SUB || x.Op == token.ADD
	case *ast.CallExpr:
		name := exprString(x.Fun)
		return name == "len" || strings.HasSuffix(name, ".Milliseconds")
	case *ast.Ident, *ast.SelectorExpr:
		name := exprString(x)
		name = name[strings.LastIndex(name, ".")+1:]
		for _, suffix := range []string{"Bytes", "MS", "Ms", "ttempts", "ttempt", "Count", "code"} {
			if strings.HasSuffix(name, suffix) {
				return true
			}
		}
	}
	return false
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.StarExpr:
		return "*" + exprString(x.X)
	case *ast.CallExpr:
		return exprString(x.Fun) + "(…)"
	case *ast.BasicLit:
		return x.Value
	}
	return fmt.Sprintf("%T", e)
}

// codeLogLine is one line the deployed functions write, as Cloud Logging
// stores it.
type codeLogLine struct {
	Function string // the deployed function (local.functions key)
	Call     codeLogCall
	Variant  string // the attribute value the line was written with, when it has several
	Line     map[string]any
	Entry    map[string]any
}

// Name is how the checks refer to the line: "compressImage: image failed",
// "deliverWebhook: webhook attempt (outcome FAILED)".
func (l codeLogLine) Name() string {
	if l.Variant != "" {
		return l.Function + ": " + l.Call.Message + " (" + l.Variant + ")"
	}
	return l.Function + ": " + l.Call.Message
}

const (
	sampleRequestID = "req-0001"
	sampleTrace     = "projects/acme-prod/traces/105445aa7843bc8bf206b12000100000"
)

// writeLine writes the call's line through the production logger, with
// one attribute set to value when variantKey is not empty.
func writeLine(t *testing.T, c codeLogCall, variantKey, variantValue string) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	l := cloudlog.New(&buf)
	value := func(a logAttr) any {
		switch {
		case a.Key == variantKey:
			return variantValue
		case a.Key == pipeline.TraceKey:
			return sampleTrace
		case a.Key == "requestId":
			return sampleRequestID
		case a.Numeric:
			return 1234
		}
		return "sample " + a.Key
	}
	kv := func(attrs []logAttr) []any {
		var out []any
		for _, a := range attrs {
			out = append(out, a.Key, value(a))
		}
		return out
	}
	for _, s := range c.Steps {
		switch s.Kind {
		case "image":
			ref := batch.ImageRef{Product: 3, URL: 1}
			l = pipeline.ImageLog(l, queue.ImageMessage{RequestID: sampleRequestID, Image: ref, Trace: sampleTrace})
		case "trace":
			l = l.With(pipeline.TraceKey, sampleTrace)
		case "with":
			l = l.With(kv(s.Attrs)...)
		}
	}
	l.Log(context.Background(), c.Level, c.Message, kv(c.Args)...)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%s: the production logger wrote %q: %v", c.Pos, buf.String(), err)
	}
	return line
}

// structuredLogSpecialFields are the fields of a structured line Cloud
// Logging takes out of jsonPayload into the LogEntry (Cloud Logging's
// "Special JSON fields in messages"); message stays in jsonPayload.
var structuredLogSpecialFields = map[string]string{
	"severity":                              "severity",
	"time":                                  "timestamp",
	"httpRequest":                           "httpRequest",
	"logging.googleapis.com/trace":          "trace",
	"logging.googleapis.com/spanId":         "spanId",
	"logging.googleapis.com/trace_sampled":  "traceSampled",
	"logging.googleapis.com/labels":         "labels",
	"logging.googleapis.com/insertId":       "insertId",
	"logging.googleapis.com/operation":      "operation",
	"logging.googleapis.com/sourceLocation": "sourceLocation",
}

// cloudRunEntry is the LogEntry of a structured line a Cloud Run
// function's service wrote to stderr.
func cloudRunEntry(service string, line map[string]any) map[string]any {
	payload := map[string]any{}
	entry := map[string]any{
		"logName": "projects/acme-prod/logs/run.googleapis.com%2Fstderr",
		"resource": map[string]any{"type": "cloud_run_revision", "labels": map[string]any{
			"service_name": service, "revision_name": service + "-00001-abc", "location": "us-central1", "project_id": "acme-prod", "configuration_name": service,
		}},
	}
	for k, v := range line {
		if to, special := structuredLogSpecialFields[k]; special {
			if to != "" {
				entry[to] = v
			}
			continue
		}
		payload[k] = v
	}
	entry["jsonPayload"] = payload
	return entry
}

// codeLogLines is every line the deployed functions write, one for each
// logging call and deployed function that runs it (and each value of an
// attribute in attrValues), as LogEntries of the function's Cloud Run
// service. serviceOf names each function's service.
func codeLogLines(t *testing.T, serviceOf map[string]string) []codeLogLine {
	t.Helper()
	var out []codeLogLine
	var unplaced []string
	logging := map[string]bool{}
	for _, c := range scanLogCalls(t) {
		logging[c.Func] = true
		fns, ok := functionsOfCode[c.Func]
		if !ok {
			unplaced = append(unplaced, fmt.Sprintf("%s (%s: %q)", c.Func, c.Pos, c.Message))
			continue
		}
		type variant struct{ key, value string }
		variants := []variant{{}}
		for _, a := range append(stepAttrs(c.Steps), c.Args...) {
			if vs, ok := attrValues[a.Key]; ok {
				variants = variants[:0]
				for _, v := range vs {
					variants = append(variants, variant{a.Key, v})
				}
			}
		}
		for _, fn := range fns {
			service, ok := serviceOf[fn]
			if !ok {
				t.Fatalf("%s runs in %s, which Terraform does not deploy", c.Func, fn)
			}
			for _, v := range variants {
				line := writeLine(t, c, v.key, v.value)
				name := ""
				if v.key != "" {
					name = v.key + " " + v.value
				}
				out = append(out, codeLogLine{Function: fn, Call: c, Variant: name, Line: line, Entry: cloudRunEntry(service, line)})
			}
		}
	}
	if len(unplaced) > 0 {
		sort.Strings(unplaced)
		t.Fatalf("functionsOfCode does not say which deployed functions run these logging code paths:\n%s", strings.Join(unplaced, "\n"))
	}
	for f := range functionsOfCode {
		if !logging[f] {
			t.Errorf("functionsOfCode names %s, which logs nothing (renamed?)", f)
		}
	}
	return out
}

func stepAttrs(steps []logStep) []logAttr {
	var out []logAttr
	for _, s := range steps {
		out = append(out, s.Attrs...)
	}
	return out
}

// The scan finds the lines the metrics are about, written as the code
// writes them: the production handler's field names, the image lines'
// request, image and trace. The functions log through cloudlog.New, the
// pipeline through the same logger.
func TestLogLinesOfTheCode(t *testing.T) {
	src, err := os.ReadFile("../../functions/functions.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(?m)^var logger = cloudlog\.New\(os\.Stderr\)$`, `\bLog:\s+logger,`} {
		if !regexp.MustCompile(want).Match(src) {
			t.Errorf("functions/functions.go does not match %s: the lines checked here are not the production logger's", want)
		}
	}
	lines := codeLogLines(t, map[string]string{"api": "imgpipe-api", "compressImage": "imgpipe-compressimage",
		"deadLetter": "imgpipe-deadletter", "deliverWebhook": "imgpipe-deliverwebhook", "sweep": "imgpipe-sweep"})
	byName := map[string]codeLogLine{}
	for _, l := range lines {
		byName[l.Name()] = l
	}
	for name, want := range map[string]map[string]any{
		"compressImage: image compressed":                     {"severity": "INFO", "requestId": sampleRequestID, "image": "3-1", "savedBytes": 1234.0, "durationMs": 1234.0},
		"compressImage: image failed":                         {"severity": "INFO", "requestId": sampleRequestID, "reason": "sample reason"},
		"sweep: image failed":                                 {"severity": "INFO", "requestId": sampleRequestID, "reason": "sample reason"},
		"sweep: request stalled":                              {"severity": "WARNING", "requestId": sampleRequestID},
		"deadLetter: image dead-lettered":                     {"severity": "WARNING", "requestId": sampleRequestID, "attempts": 1234.0},
		"deliverWebhook: webhook attempt (outcome FAILED)":    {"severity": "INFO", "requestId": sampleRequestID, "outcome": "FAILED"},
		"deliverWebhook: webhook attempt (outcome DELIVERED)": {"outcome": "DELIVERED"},
	} {
		l, ok := byName[name]
		if !ok {
			t.Errorf("no line %q among the code's", name)
			continue
		}
		if l.Line["message"] != l.Call.Message {
			t.Errorf("%s: message %v", name, l.Line["message"])
		}
		for k, v := range want {
			if got := l.Line[k]; got != v {
				t.Errorf("%s: %s = %#v, want %#v (line %v)", name, k, got, v, l.Line)
			}
		}
		payload := l.Entry["jsonPayload"].(map[string]any)
		if _, kept := payload["severity"]; kept || payload["message"] != l.Call.Message {
			t.Errorf("%s: LogEntry %v", name, l.Entry)
		}
	}
	if len(lines) < 20 {
		t.Errorf("only %d lines found in the code", len(lines))
	}
}

// The scan follows loggers through variables, With and ImageLog, reads
// attribute names, and refuses what it cannot read.
func TestLogScanFollowsLoggers(t *testing.T) {
	scan := func(src string) ([]codeLogCall, error) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", "package pipeline\n"+src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []codeLogCall
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				c, err := scanFunc(fset, "pipeline", fd)
				if err != nil {
					return nil, err
				}
				out = append(out, c...)
			}
		}
		return out, nil
	}
	calls, err := scan(`
func (s *Service) A(m queue.ImageMessage) {
	log := ImageLog(s.Log, m).With("attempt", 2)
	log.Warn("one", "reason", r, "savedBytes", a-b)
	other.Info("not a logger")
	http.Error(w, "not a logger", 500)
}
func logIt(l *slog.Logger) { l.With(TraceKey, t).Error("two", "n", len(x)) }
`)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(calls)
	for _, want := range []string{
		`x.go:5 pipeline.Service.A WARN one [{image []} {with [{attempt true}]}] [{reason false} {savedBytes true}]`,
		`x.go:9 pipeline.logIt ERROR two [{with [{logging.googleapis.com/trace false}]}] [{n true}]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scan found %s, want %s", got, want)
		}
	}
	if len(calls) != 2 {
		t.Errorf("%d calls, want 2: %v", len(calls), calls)
	}
	for _, bad := range []string{
		`func (s *Service) B() { s.Log.Info(msg) }`,
		`func (s *Service) B() { s.Log.Info("m", key, 1) }`,
		`func (s *Service) B() { s.Log.Info("m", "k") }`,
	} {
		if _, err := scan(bad); err == nil {
			t.Errorf("%s: scanned without complaint", bad)
		}
	}
}
