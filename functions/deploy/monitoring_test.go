package deploy

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// The checks of terraform/monitoring.tf: its filters read the same
// whatever the precedence of AND and OR, its log-based metrics and
// log-match alerts match exactly the lines of the code they are for, no
// alert waits on a log-based metric Monitoring may not know yet, the
// dashboard is written as the API returns it, and the distributions'
// buckets reach the largest value they record.

// The Terraform functions monitoring.tf uses beyond those of
// terraform_test.go.
func init() {
	tfFunctions["floor"] = stdlib.FloorFunc
	tfFunctions["join"] = stdlib.JoinFunc
	tfFunctions["jsonencode"] = stdlib.JSONEncodeFunc
	tfFunctions["length"] = stdlib.LengthFunc
	tfFunctions["log"] = stdlib.LogFunc
	tfFunctions["merge"] = stdlib.MergeFunc
}

// monitoringEvaluator is the evaluator with the instances of the
// monitoring resources made with for_each (google_logging_metric.count["x"]
// and the like), each with the arguments that evaluate for it, in the
// order they refer to each other.
func monitoringEvaluator(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value) *evaluator {
	t.Helper()
	e := newEvaluator(t, blocks, overrides)
	for _, typ := range []string{"google_logging_metric", "google_monitoring_alert_policy", "google_monitoring_notification_channel"} {
		byName := map[string]cty.Value{}
		if v, ok := e.ctx.Variables[typ]; ok {
			byName = v.AsValueMap()
		}
		for _, b := range ofType(blocks, "resource", typ) {
			if _, ok := b.Body.Attributes["for_each"]; !ok {
				continue
			}
			keys, ctxs, err := e.instanceContexts(b)
			if err != nil {
				t.Fatal(err)
			}
			instances := map[string]cty.Value{}
			for i, ctx := range ctxs {
				attrs := map[string]cty.Value{}
				for name, a := range b.Body.Attributes {
					if v, diags := a.Expr.Value(ctx); !diags.HasErrors() {
						attrs[name] = v
					}
				}
				key := strings.TrimSuffix(keys[i][strings.Index(keys[i], "[\"")+2:], "\"]")
				attrs["id"] = cty.StringVal("id-of-" + keys[i])
				instances[key] = cty.ObjectVal(attrs)
			}
			byName[b.Labels[1]] = cty.ObjectVal(instances)
		}
		e.ctx.Variables[typ] = cty.ObjectVal(byName)
		e.evalLocals(blocks) // the locals of the next type may read these
	}
	return e
}

// A filter Terraform would write: where, in which language, and what
// reads fields of the lines it matches.
type tfFilter struct {
	Where      string // resource instance and argument
	Logging    bool   // a Logging query language filter (else a Monitoring time series filter)
	Filter     string
	Extractors []string // EXTRACT(…) expressions of label or value extractors
	Values     []string // fields a value extractor reads: numbers
}

var extractRE = regexp.MustCompile(`^EXTRACT\((jsonPayload\.[A-Za-z0-9_.]+)\)$`)

// monitoringFilters evaluates every filter of the monitoring resources:
// log-based metrics, alert policy conditions, dashboard data sets.
func monitoringFilters(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value) []tfFilter {
	t.Helper()
	e := monitoringEvaluator(t, blocks, overrides)
	var out []tfFilter
	str := func(ctx *hcl.EvalContext, a *hclsyntax.Attribute, where string) string {
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
			t.Fatalf("%s does not evaluate to a string: %s", where, diags.Error())
		}
		return v.AsString()
	}
	extractors := func(ctx *hcl.EvalContext, a *hclsyntax.Attribute, where string) []string {
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() || !v.IsKnown() {
			t.Fatalf("%s does not evaluate: %s", where, diags.Error())
		}
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, x := it.Element()
			out = append(out, x.AsString())
		}
		sort.Strings(out)
		return out
	}
	for _, typ := range []string{"google_logging_metric", "google_monitoring_alert_policy"} {
		for _, b := range ofType(blocks, "resource", typ) {
			keys, ctxs, err := e.instanceContexts(b)
			if err != nil {
				t.Fatal(err)
			}
			for i, ctx := range ctxs {
				if typ == "google_logging_metric" {
					f := tfFilter{Where: keys[i] + ".filter", Logging: true, Filter: str(ctx, b.Body.Attributes["filter"], keys[i]+".filter")}
					if a, ok := b.Body.Attributes["label_extractors"]; ok {
						f.Extractors = extractors(ctx, a, keys[i]+".label_extractors")
					}
					if a, ok := b.Body.Attributes["value_extractor"]; ok {
						v := str(ctx, a, keys[i]+".value_extractor")
						f.Extractors = append(f.Extractors, v)
						f.Values = append(f.Values, v)
					}
					out = append(out, f)
					continue
				}
				for _, c := range childBlocks(b.Body, "conditions") {
					for _, kind := range []string{"condition_threshold", "condition_absent", "condition_matched_log"} {
						for _, cb := range childBlocks(c.Body, kind) {
							where := keys[i] + ".conditions." + kind
							f := tfFilter{Where: where + ".filter", Logging: kind == "condition_matched_log", Filter: str(ctx, cb.Body.Attributes["filter"], where+".filter")}
							if a, ok := cb.Body.Attributes["label_extractors"]; ok {
								f.Extractors = extractors(ctx, a, where+".label_extractors")
							}
							out = append(out, f)
						}
					}
				}
			}
		}
	}
	for _, b := range ofType(blocks, "resource", "google_monitoring_dashboard") {
		for _, ds := range dashboardDataSets(t, e, b) {
			if f, ok := ds.Query["timeSeriesFilter"].(map[string]any)["filter"].(string); ok {
				out = append(out, tfFilter{Where: ds.Where + ".timeSeriesFilter.filter", Filter: f})
			}
		}
	}
	return out
}

// dashboardJSON is the evaluated dashboard_json of a dashboard.
func dashboardJSON(t *testing.T, e *evaluator, b tfBlock) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(e.str(t, b.Body, "dashboard_json")), &d); err != nil {
		t.Fatalf("%s: dashboard_json: %v", b.Addr(), err)
	}
	return d
}

type dashboardDataSet struct {
	Where string
	Query map[string]any // timeSeriesQuery
}

func dashboardDataSets(t *testing.T, e *evaluator, b tfBlock) []dashboardDataSet {
	t.Helper()
	var out []dashboardDataSet
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch x := v.(type) {
		case map[string]any:
			if q, ok := x["timeSeriesQuery"].(map[string]any); ok {
				out = append(out, dashboardDataSet{Where: where, Query: q})
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k], where+"."+k)
			}
		case []any:
			for i, w := range x {
				walk(w, fmt.Sprintf("%s[%d]", where, i))
			}
		}
	}
	walk(dashboardJSON(t, e, b), b.Addr())
	return out
}

// filterProblems: a filter that does not parse, or has a level joining
// terms with both AND and OR.
func filterProblems(filters []tfFilter) []string {
	var problems []string
	for _, f := range filters {
		p, err := parseFilter(f.Filter)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s does not parse: %v: %s", f.Where, err, f.Filter))
			continue
		}
		for _, m := range p.mixed {
			problems = append(problems, fmt.Sprintf("%s: %s joins terms with both AND and OR, whose meaning depends on precedence (OR binds tighter than AND): %s", f.Where, m, f.Filter))
		}
	}
	return problems
}

// Every filter Terraform writes parses, and no level of it mixes AND and
// OR: it reads the same whatever the precedence.
func TestMonitoringFiltersReadTheSameWhateverThePrecedence(t *testing.T) {
	filters := monitoringFilters(t, loadTerraform(t, tfDir), nil)
	for _, p := range filterProblems(filters) {
		t.Error(p)
	}
	kinds := map[string]int{}
	for _, f := range filters {
		kinds[strings.SplitN(f.Where, ".", 2)[0]]++
	}
	// 5 counts and 2 distributions; 3 threshold and 3 log-match alerts; 7 charts.
	for kind, want := range map[string]int{"google_logging_metric": 7, "google_monitoring_alert_policy": 6, "google_monitoring_dashboard": 7} {
		if kinds[kind] != want {
			t.Errorf("%d filters of %s, want %d (found %v)", kinds[kind], kind, want, kinds)
		}
	}
}

// The check finds a filter whose meaning depends on precedence: two
// functions' lines joined as "A AND B OR C AND D", which the Logging query
// language reads as A AND (B OR C) AND D.
func TestFilterCheckFindsMixedPrecedence(t *testing.T) {
	blocks := terraformWith(t, tfEdit{File: "monitoring.tf", Old: oldStyleFilterOld, New: oldStyleFilterNew})
	got := filterProblems(monitoringFilters(t, blocks, nil))
	if !slices.ContainsFunc(got, func(p string) bool {
		return strings.Contains(p, `google_logging_metric.count["imgpipe_images_failed"].filter`) && strings.Contains(p, "both AND and OR")
	}) {
		t.Errorf("the check missed the precedence-dependent filter; it found:\n%s", strings.Join(got, "\n"))
	}
	for _, bad := range []string{`resource.type="x" AND (`, `jsonPayload.message="a" OR`} {
		if p := filterProblems([]tfFilter{{Where: "w", Filter: bad}}); len(p) != 1 || !strings.Contains(p[0], "does not parse") {
			t.Errorf("%q: %v", bad, p)
		}
	}
}

// oldStyleFilter{Old,New} turn the log filters into the shape
// (SERVICE_A OR SERVICE_B) AND message, where each SERVICE is
// resource.type=… AND resource.labels.service_name=… unparenthesised.
const (
	oldStyleFilterOld = `log_filters = { for k, m in local.log_metrics : k => join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(${join(" OR ", [for f in m.functions : "\"${google_cloudfunctions2_function.fn[f].name}\""])})",
    m.lines,
  ]) }`
	oldStyleFilterNew = `log_filters = { for k, m in local.log_metrics : k => length(m.functions) == 1 ? "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloudfunctions2_function.fn[m.functions[0]].name}\" AND ${m.lines}" : "(${join(" OR ", [for f in m.functions : "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloudfunctions2_function.fn[f].name}\""])}) AND ${m.lines}" }`
)

// linesOfFilters are the lines each logging filter is for, by the names
// codeLogLine.Name gives them.
var linesOfFilters = map[string][]string{
	`google_logging_metric.count["imgpipe_images_compressed"].filter`:                                     {"compressImage: image compressed"},
	`google_logging_metric.count["imgpipe_images_failed"].filter`:                                         {"compressImage: image failed", "sweep: image failed"},
	`google_logging_metric.count["imgpipe_requests_stalled"].filter`:                                      {"sweep: request stalled"},
	`google_logging_metric.count["imgpipe_images_dead_lettered"].filter`:                                  {"deadLetter: image dead-lettered"},
	`google_logging_metric.count["imgpipe_webhooks_failed"].filter`:                                       {"deliverWebhook: webhook attempt (outcome FAILED)"},
	`google_logging_metric.distribution["imgpipe_bytes_saved"].filter`:                                    {"compressImage: image compressed"},
	`google_logging_metric.distribution["imgpipe_image_duration_ms"].filter`:                              {"compressImage: image compressed"},
	`google_monitoring_alert_policy.log_alerts["dead_lettered"].conditions.condition_matched_log.filter`:  {"deadLetter: image dead-lettered"},
	`google_monitoring_alert_policy.log_alerts["webhook_failed"].conditions.condition_matched_log.filter`: {"deliverWebhook: webhook attempt (outcome FAILED)"},
	`google_monitoring_alert_policy.log_alerts["stalled"].conditions.condition_matched_log.filter`:        {"sweep: request stalled"},
}

// servicesOfFunctions names the Cloud Run service of each function
// Terraform deploys, as it names them.
func servicesOfFunctions(t *testing.T, blocks []tfBlock) map[string]string {
	t.Helper()
	e := newEvaluator(t, blocks, nil)
	fn := mustFind(t, blocks, "resource", "google_cloudfunctions2_function", "fn")
	keys, ctxs, err := e.instanceContexts(fn)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, ctx := range ctxs {
		name, ok := evalString(ctx, fn.Body.Attributes, "name")
		if !ok {
			t.Fatalf("%s: name does not evaluate", keys[i])
		}
		out[strings.TrimSuffix(keys[i][strings.Index(keys[i], "[\"")+2:], "\"]")] = name
	}
	return out
}

// metricProblems evaluates each logging filter against the lines the code
// writes: it must match the lines linesOfFilters gives it and no other,
// and each line it matches must carry what its extractors read.
func metricProblems(t *testing.T, blocks []tfBlock) []string {
	t.Helper()
	lines := codeLogLines(t, servicesOfFunctions(t, blocks))
	var problems []string
	seen := map[string]bool{}
	for _, f := range monitoringFilters(t, blocks, nil) {
		if !f.Logging {
			continue
		}
		seen[f.Where] = true
		want, ok := linesOfFilters[f.Where]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: linesOfFilters does not say which lines it is for", f.Where))
			continue
		}
		p, err := parseFilter(f.Filter)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s does not parse: %v", f.Where, err))
			continue
		}
		var got []string
		for _, l := range lines {
			if !p.root.match(l.Entry) {
				continue
			}
			got = append(got, l.Name())
			for _, x := range f.Extractors {
				m := extractRE.FindStringSubmatch(x)
				if m == nil {
					problems = append(problems, fmt.Sprintf("%s: extractor %s is not EXTRACT(jsonPayload.field)", f.Where, x))
					continue
				}
				v, ok := lookupField(l.Entry, strings.Split(m[1], "."))
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: %s finds nothing in %q (%s)", f.Where, x, l.Name(), l.Call.Pos))
				} else if _, num := v.(float64); slices.Contains(f.Values, x) && !num {
					problems = append(problems, fmt.Sprintf("%s: %s reads %v from %q, not a number", f.Where, x, v, l.Name()))
				}
			}
		}
		sort.Strings(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s matches %q, want %q\n  filter: %s", f.Where, got, want, f.Filter))
		}
	}
	for where := range linesOfFilters {
		if !seen[where] {
			problems = append(problems, fmt.Sprintf("no logging filter %s in the Terraform files", where))
		}
	}
	sort.Strings(problems)
	return problems
}

// Each log-based metric and log-match alert matches exactly the lines of
// the code it is for (imgpipe_images_failed: "image failed" from
// compressImage and from the sweep, not "image failed, will retry"), read
// from LogEntries of the lines the production logger writes.
func TestLogMetricsCountTheLinesTheyAreFor(t *testing.T) {
	for _, p := range metricProblems(t, loadTerraform(t, tfDir)) {
		t.Error(p)
	}
}

// The check finds a filter that does not count what it is for: the
// precedence-dependent filter of two functions' lines counts the sweep's
// alone; a message matched with : also counts "image failed, will retry".
func TestMetricCheckFindsMistakes(t *testing.T) {
	for _, c := range []struct {
		name string
		edit tfEdit
		want string
	}{
		{
			name: "precedence",
			edit: tfEdit{File: "monitoring.tf", Old: oldStyleFilterOld, New: oldStyleFilterNew},
			want: `google_logging_metric.count["imgpipe_images_failed"].filter matches ["sweep: image failed"], want ["compressImage: image failed" "sweep: image failed"]`,
		},
		{
			name: "has instead of equals",
			edit: tfEdit{File: "monitoring.tf", Old: `lines       = "jsonPayload.message=\"image failed\""`, New: `lines       = "jsonPayload.message:\"image failed\""`},
			want: `google_logging_metric.count["imgpipe_images_failed"].filter matches ["compressImage: image failed" "compressImage: image failed, will retry" "sweep: image failed"]`,
		},
		{
			name: "a field the lines do not have",
			edit: tfEdit{File: "monitoring.tf", Old: `{ reason = "EXTRACT(jsonPayload.reason)" }`, New: `{ reason = "EXTRACT(jsonPayload.reasonCode)" }`},
			want: `EXTRACT(jsonPayload.reasonCode) finds nothing in "compressImage: image failed"`,
		},
		{
			name: "webhook attempts of any outcome",
			edit: tfEdit{File: "monitoring.tf", Old: ` AND jsonPayload.outcome=\"FAILED\""`, New: `"`},
			want: `google_logging_metric.count["imgpipe_webhooks_failed"].filter matches ["deliverWebhook: webhook attempt (outcome DELIVERED)" "deliverWebhook: webhook attempt (outcome DELIVERING)" "deliverWebhook: webhook attempt (outcome FAILED)"]`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := metricProblems(t, terraformWith(t, c.edit))
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("the check missed: %s\nit found:\n%s", c.want, strings.Join(got, "\n"))
			}
		})
	}
}

// userMetric is how a filter or query names a log-based metric.
const userMetric = "logging.googleapis.com/user/"

// newMetricProblems: an alert policy whose condition reads a log-based
// metric, or a dashboard chart whose query Monitoring resolves when the
// dashboard is saved (Monitoring Query Language, PromQL), unless it
// depends on a time_sleep that depends on the metrics. A metric just
// created can take up to 10 minutes to be known: the policy's creation
// fails with 404 "Cannot find metric(s)" (terraform-provider-google issue
// 11102, not retried), a dashboard's with 400 "Could not find a metric
// named" for those query languages. A dashboard's time series filter
// names the metric without a query to compile; the issues report no such
// failure for it.
func newMetricProblems(t *testing.T, blocks []tfBlock) []string {
	t.Helper()
	e := monitoringEvaluator(t, blocks, nil)
	var problems []string
	for _, b := range ofType(blocks, "resource", "google_monitoring_alert_policy") {
		keys, ctxs, err := e.instanceContexts(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, ctx := range ctxs {
			for _, c := range childBlocks(b.Body, "conditions") {
				for _, s := range evaluatedStrings(ctx, c.Body) {
					if strings.Contains(s, userMetric) && !waitsForLogMetrics(blocks, b) {
						problems = append(problems, fmt.Sprintf("%s reads a log-based metric (%s) and may be created before Monitoring knows it: use a log-match condition, or depend on a time_sleep after the metrics", keys[i], s))
					}
				}
			}
		}
	}
	for _, b := range ofType(blocks, "resource", "google_monitoring_dashboard") {
		for _, ds := range dashboardDataSets(t, e, b) {
			for _, lang := range []string{"timeSeriesQueryLanguage", "prometheusQuery"} {
				if q, ok := ds.Query[lang].(string); ok && strings.Contains(q, userMetric) && !waitsForLogMetrics(blocks, b) {
					problems = append(problems, fmt.Sprintf("%s.%s reads a log-based metric and is resolved when the dashboard is saved, maybe before Monitoring knows the metric: use a timeSeriesFilter, or depend on a time_sleep after the metrics", ds.Where, lang))
				}
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// evaluatedStrings are the string values of every argument under body.
func evaluatedStrings(ctx *hcl.EvalContext, body *hclsyntax.Body) []string {
	var out []string
	for _, a := range body.Attributes {
		if v, diags := a.Expr.Value(ctx); !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			out = append(out, v.AsString())
		}
	}
	for _, c := range body.Blocks {
		out = append(out, evaluatedStrings(ctx, c.Body)...)
	}
	return out
}

// waitsForLogMetrics reports whether b depends, directly or through
// others, on a time_sleep that follows a google_logging_metric.
func waitsForLogMetrics(blocks []tfBlock, b tfBlock) bool {
	deps := dependencyGraph(blocks)
	return reachesAny(deps, b.Addr(), func(addr string) bool {
		return strings.HasPrefix(addr, "time_sleep.") &&
			slices.ContainsFunc(deps[addr], func(x string) bool { return strings.HasPrefix(x, "google_logging_metric.") })
	})
}

// No alert policy (and no dashboard query resolved on saving) reads a
// log-based metric unless it waits for the metrics.
func TestNoAlertWaitsOnANewLogMetric(t *testing.T) {
	for _, p := range newMetricProblems(t, loadTerraform(t, tfDir)) {
		t.Error(p)
	}
}

// The check finds a threshold alert on a log-based metric, and an MQL
// chart of one; it accepts them behind a time_sleep after the metrics.
func TestNewMetricCheckFindsMistakes(t *testing.T) {
	thresholdOnMetric := tfEdit{File: "monitoring.tf", Old: `  alerts = {
`, New: `  alerts = {
    dead_letters_counted = {
      name      = "dead letters"
      filter    = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.count["imgpipe_images_dead_lettered"].name}\" AND resource.type=\"cloud_run_revision\""
      aligner   = "ALIGN_DELTA"
      threshold = 0
      duration  = "0s"
      doc       = "x"
    }
`}
	mqlChart := tfEdit{File: "monitoring.tf", Old: `timeSeriesFilter = {
                    filter = "metric.type=\"logging.googleapis.com/user/${w.metric}\" AND resource.type=\"cloud_run_revision\""`,
		New: `timeSeriesQueryLanguage = "fetch cloud_run_revision | metric 'logging.googleapis.com/user/${w.metric}'"
                  timeSeriesFilter = {
                    filter = "metric.type=\"logging.googleapis.com/user/${w.metric}\" AND resource.type=\"cloud_run_revision\""`}
	wait := tfEdit{File: "monitoring.tf", New: `resource "time_sleep" "log_metrics" {
  create_duration = "600s"
  depends_on      = [google_logging_metric.count, google_logging_metric.distribution]
}
`}
	// The alert policies and the dashboard depend on the wait.
	alertsWait := tfEdit{File: "monitoring.tf", Old: `  depends_on = [time_sleep.apis_ready]
}

# A log-match policy`, New: `  depends_on = [time_sleep.apis_ready, time_sleep.log_metrics]
}

# A log-match policy`}
	dashboardWait := tfEdit{File: "monitoring.tf", Old: `  })
  depends_on = [time_sleep.apis_ready]`, New: `  })
  depends_on = [time_sleep.apis_ready, time_sleep.log_metrics]`}
	for _, c := range []struct {
		name  string
		edits []tfEdit
		want  []string // none: no problem at all
	}{
		{
			name:  "a threshold alert on a log-based metric",
			edits: []tfEdit{thresholdOnMetric},
			want:  []string{`google_monitoring_alert_policy.alerts["dead_letters_counted"] reads a log-based metric`},
		},
		{
			name:  "an MQL chart of a log-based metric",
			edits: []tfEdit{mqlChart},
			want:  []string{`google_monitoring_dashboard.imgpipe.mosaicLayout.tiles[0].widget.xyChart.dataSets[0].timeSeriesQueryLanguage reads a log-based metric`},
		},
		{
			name:  "both, behind a wait after the metrics",
			edits: []tfEdit{thresholdOnMetric, mqlChart, wait, alertsWait, dashboardWait},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := newMetricProblems(t, terraformWith(t, c.edits...))
			if len(c.want) == 0 && len(got) > 0 {
				t.Errorf("the check refuses an acceptable copy:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("the check missed: %s\nit found:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// dashboardProblems: a field of a dashboard's JSON at its zero value (0,
// "", false, []). The API leaves those out of what it returns (proto3
// JSON), the provider's diff (monitoringDashboardDiffSuppress) ignores
// only fields the configuration lacks, so the dashboard would be updated
// on every apply.
func dashboardProblems(t *testing.T, blocks []tfBlock) []string {
	t.Helper()
	e := monitoringEvaluator(t, blocks, nil)
	var problems []string
	for _, b := range ofType(blocks, "resource", "google_monitoring_dashboard") {
		var walk func(v any, where string)
		walk = func(v any, where string) {
			switch x := v.(type) {
			case map[string]any:
				for k, w := range x {
					walk(w, where+"."+k)
				}
			case []any:
				if len(x) == 0 {
					problems = append(problems, where+" is empty: the API leaves it out")
				}
				for i, w := range x {
					walk(w, fmt.Sprintf("%s[%d]", where, i))
				}
			case float64, string, bool:
				if x == 0.0 || x == "" || x == false {
					problems = append(problems, fmt.Sprintf("%s is %#v: the API leaves it out", where, x))
				}
			}
		}
		walk(dashboardJSON(t, e, b), b.Addr())
	}
	sort.Strings(problems)
	return problems
}

// The dashboard's JSON has no field at its zero value, so what the API
// returns matches it; its tiles still tile the grid.
func TestDashboardWrittenAsTheAPIReturnsIt(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, p := range dashboardProblems(t, blocks) {
		t.Error(p)
	}
	e := monitoringEvaluator(t, blocks, nil)
	d := dashboardJSON(t, e, mustFind(t, blocks, "resource", "google_monitoring_dashboard", "imgpipe"))
	layout := d["mosaicLayout"].(map[string]any)
	cols := layout["columns"].(float64)
	taken := map[[2]float64]string{}
	tiles := layout["tiles"].([]any)
	for i, v := range tiles {
		tile := v.(map[string]any)
		x, _ := tile["xPos"].(float64) // absent: 0
		y, _ := tile["yPos"].(float64)
		w, h := tile["width"].(float64), tile["height"].(float64)
		if x+w > cols {
			t.Errorf("tile %d ends at column %v of %v", i, x+w, cols)
		}
		for cx := x; cx < x+w; cx++ {
			for cy := y; cy < y+h; cy++ {
				if other, ok := taken[[2]float64{cx, cy}]; ok {
					t.Errorf("tile %d overlaps %s at %v,%v", i, other, cx, cy)
				}
				taken[[2]float64{cx, cy}] = fmt.Sprint("tile ", i)
			}
		}
	}
	if len(tiles) != 7 {
		t.Errorf("%d tiles, want 7", len(tiles))
	}
	group := tiles[4].(map[string]any)["widget"].(map[string]any)["xyChart"].(map[string]any)["dataSets"].([]any)[0].(map[string]any)["timeSeriesQuery"].(map[string]any)["timeSeriesFilter"].(map[string]any)["aggregation"].(map[string]any)["groupByFields"]
	if fmt.Sprint(group) != "[metric.label.reason]" {
		t.Errorf("the failed images chart groups by %v, want the reason", group)
	}
}

// The check finds the zero positions and the empty groupByFields the API
// leaves out.
func TestDashboardCheckFindsZeroValues(t *testing.T) {
	got := dashboardProblems(t, terraformWith(t,
		tfEdit{File: "monitoring.tf", Old: `merge({ for k, v in { xPos = (i % 2) * 6, yPos = floor(i / 2) * 4 } : k => v if v != 0 }, {`, New: `merge({ xPos = (i % 2) * 6, yPos = floor(i / 2) * 4 }, {`},
		tfEdit{File: "monitoring.tf", Old: `{ for k, v in { groupByFields = w.group } : k => v if length(v) > 0 }`, New: `{ groupByFields = w.group }`},
	))
	for _, want := range []string{
		"google_monitoring_dashboard.imgpipe.mosaicLayout.tiles[0].xPos is 0",
		"google_monitoring_dashboard.imgpipe.mosaicLayout.tiles[1].yPos is 0",
		"google_monitoring_dashboard.imgpipe.mosaicLayout.tiles[0].widget.xyChart.dataSets[0].timeSeriesQuery.timeSeriesFilter.aggregation.groupByFields is empty",
	} {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("the check missed: %s\nit found:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, "tiles[1].xPos") }) {
		t.Errorf("a non-zero position reported:\n%s", strings.Join(got, "\n"))
	}
}

// largestValueOf is the largest value each distribution records: bytes
// saved at most an accepted image's size, the time per image at most the
// compress function's timeout.
var largestValueOf = map[string]func(e *evaluator) float64{
	"imgpipe_bytes_saved": func(e *evaluator) float64 {
		f, _ := e.ctx.Variables["var"].GetAttr("max_image_bytes").AsBigFloat().Float64()
		return f
	},
	"imgpipe_image_duration_ms": func(e *evaluator) float64 {
		fns, _ := e.local("functions")
		f, _ := fns.GetAttr("compressImage").GetAttr("timeout").AsBigFloat().Float64()
		return f * 1000
	},
}

// maxFiniteBuckets bounds a distribution's size: each point carries a
// count per bucket.
const maxFiniteBuckets = 64

// bucketProblems: a distribution whose exponential buckets do not reach
// the largest value it records (those fall in the overflow bucket, where
// no percentile can be read), reach it with buckets to spare, break the
// API's rules (num_finite_buckets > 0, growth_factor > 1, scale > 0:
// google.api.Distribution.BucketOptions.Exponential) or have more than
// maxFiniteBuckets.
func bucketProblems(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value) []string {
	t.Helper()
	e := monitoringEvaluator(t, blocks, overrides)
	var problems []string
	seen := map[string]bool{}
	for _, b := range ofType(blocks, "resource", "google_logging_metric") {
		keys, ctxs, err := e.instanceContexts(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, ctx := range ctxs {
			for _, bo := range childBlocks(b.Body, "bucket_options") {
				for _, eb := range childBlocks(bo.Body, "exponential_buckets") {
					num := func(attr string) float64 {
						v, diags := eb.Body.Attributes[attr].Expr.Value(ctx)
						if diags.HasErrors() || v.Type() != cty.Number {
							t.Fatalf("%s: %s does not evaluate to a number: %s", keys[i], attr, diags.Error())
						}
						f, _ := v.AsBigFloat().Float64()
						return f
					}
					n, growth, scale := num("num_finite_buckets"), num("growth_factor"), num("scale")
					name, _ := evalString(ctx, b.Body.Attributes, "name")
					seen[name] = true
					largest, ok := largestValueOf[name]
					if !ok {
						problems = append(problems, fmt.Sprintf("%s: largestValueOf does not say what it records at most", keys[i]))
						continue
					}
					top, max := scale*math.Pow(growth, n), largest(e)
					switch {
					case n < 1 || n != math.Trunc(n) || growth <= 1 || scale <= 0:
						problems = append(problems, fmt.Sprintf("%s: %v buckets, growth %v, scale %v: the API wants a whole number of buckets > 0, growth > 1, scale > 0", keys[i], n, growth, scale))
					case n > maxFiniteBuckets:
						problems = append(problems, fmt.Sprintf("%s: %v finite buckets, more than %d", keys[i], n, maxFiniteBuckets))
					case top < max:
						problems = append(problems, fmt.Sprintf("%s: buckets end at %.0f (%v × %v^%v), below the largest value %.0f", keys[i], top, scale, growth, n, max))
					case n > 1 && scale*math.Pow(growth, n-1) >= max:
						problems = append(problems, fmt.Sprintf("%s: %v buckets end at %.0f, one fewer would reach the largest value %.0f", keys[i], n, top, max))
					}
				}
			}
		}
	}
	for name := range largestValueOf {
		if !seen[name] {
			problems = append(problems, "no distribution "+name)
		}
	}
	sort.Strings(problems)
	return problems
}

// The distributions' buckets reach the largest value each records, for
// the default and other accepted image sizes.
func TestDistributionBucketsReachTheLargestValue(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, size := range []int64{0, 1 << 20, 5_000_000, 100 << 20, 1 << 30} {
		var overrides map[string]cty.Value
		if size > 0 {
			overrides = map[string]cty.Value{"max_image_bytes": cty.NumberIntVal(size)}
		}
		for _, p := range bucketProblems(t, blocks, overrides) {
			t.Errorf("max_image_bytes %d: %s", size, p)
		}
	}
}

// The check finds fixed buckets that end below the largest image (1.5^40
// is about 11 MB, the default max_image_bytes 25 MiB) or far above it.
func TestBucketCheckFindsMistakes(t *testing.T) {
	blocks := terraformWith(t, tfEdit{File: "monitoring.tf", Old: `num_finite_buckets = max(1, ceil(log(each.value.largest, local.bucket_growth)))`, New: `num_finite_buckets = 40`})
	got := strings.Join(bucketProblems(t, blocks, nil), "\n")
	for _, want := range []string{
		`google_logging_metric.distribution["imgpipe_bytes_saved"]: buckets end at 11057332 (1 × 1.5^40), below the largest value 26214400`,
		`google_logging_metric.distribution["imgpipe_image_duration_ms"]: 40 buckets end at 11057332, one fewer would reach the largest value 120000`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed: %s\nit found:\n%s", want, got)
		}
	}
}

// The operator's alerts and dashboard exist: threshold alerts on Google's
// metrics, log-match alerts on single lines.
func TestMonitoringAlertsAndDashboard(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	e := monitoringEvaluator(t, blocks, nil)
	for local, want := range map[string][]string{
		"alerts":     {"api_5xx", "compress_errors", "oldest_unacked"},
		"log_alerts": {"dead_lettered", "webhook_failed", "stalled"},
	} {
		v, ok := e.local(local)
		if !ok {
			t.Fatalf("no local.%s", local)
		}
		for _, w := range want {
			if !v.Type().HasAttribute(w) {
				t.Errorf("no alert policy %s in local.%s", w, local)
			}
		}
		p := mustFind(t, blocks, "resource", "google_monitoring_alert_policy", local)
		if exprText(p.Body.Attributes["for_each"].Expr) != "local."+local {
			t.Errorf("the alert policies %s are not made from local.%s", local, local)
		}
	}
	// A log-match policy has one condition, limits its notifications
	// (required) and says which request.
	p := mustFind(t, blocks, "resource", "google_monitoring_alert_policy", "log_alerts")
	if c := childBlocks(p.Body, "conditions"); len(c) != 1 || len(childBlocks(c[0].Body, "condition_matched_log")) != 1 {
		t.Error("the log-match policies do not have one condition_matched_log condition")
	}
	as := childBlocks(p.Body, "alert_strategy")
	if len(as) != 1 || len(childBlocks(as[0].Body, "notification_rate_limit")) != 1 {
		t.Error("the log-match policies have no notification_rate_limit")
	}
	if _, ok := find(blocks, "resource", "google_monitoring_dashboard", "imgpipe"); !ok {
		t.Error("no dashboard")
	}
}
