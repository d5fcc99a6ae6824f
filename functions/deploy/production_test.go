package deploy

import (
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/imgpipe/imgpipe/functions"
	"github.com/imgpipe/imgpipe/functions/localstack"
	"github.com/imgpipe/imgpipe/shared/config"
)

// configDefault is the product's default for an environment variable.
func configDefault(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Variables {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("config has no %s", name)
	return ""
}

func mib(t *testing.T, memory string) int64 {
	t.Helper()
	switch {
	case strings.HasSuffix(memory, "Gi"):
		n, err := strconv.ParseInt(strings.TrimSuffix(memory, "Gi"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n * 1024
	case strings.HasSuffix(memory, "Mi"):
		n, err := strconv.ParseInt(strings.TrimSuffix(memory, "Mi"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatalf("memory %q is not in Mi or Gi", memory)
	return 0
}

// Cloud Run serves concurrent requests only with at least 1 CPU; its
// memory per CPU is bounded (1 CPU: 4 GiB, 2: 8 GiB, 4: 16 GiB, 8: 32 GiB).
// compressImage has room for every image it works on at once at the
// decode limits it is given. Checked for the default concurrency and the
// largest the variable allows.
func TestFunctionsSizedForTheirConcurrency(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, conc := range []int64{4, 1, 8, 16} {
		e := newEvaluator(t, blocks, map[string]cty.Value{"compress_concurrency": cty.NumberIntVal(conc)})
		fns, ok := e.local("functions")
		if !ok {
			t.Fatal("terraform: no local.functions")
		}
		vars := e.ctx.Variables["var"]
		maxPixels, _ := vars.GetAttr("max_pixels").AsBigFloat().Int64()
		maxImage, _ := vars.GetAttr("max_image_bytes").AsBigFloat().Int64()
		for name, f := range fns.AsValueMap() {
			cpu, err := strconv.ParseFloat(f.GetAttr("cpu").AsString(), 64)
			if err != nil {
				t.Fatalf("%s: cpu %q", name, f.GetAttr("cpu").AsString())
			}
			concurrency, _ := f.GetAttr("concurrency").AsBigFloat().Int64()
			memory := mib(t, f.GetAttr("memory").AsString())
			if concurrency > 1 && cpu < 1 {
				t.Errorf("%s: concurrency %d with %.2f CPU; Cloud Run needs at least 1", name, concurrency, cpu)
			}
			if limit := int64(4096 * math.Max(1, cpu)); memory > limit {
				t.Errorf("%s: %d MiB with %.0f CPU; Cloud Run allows at most %d MiB", name, memory, cpu, limit)
			}
			if name == functions.FnCompress {
				// conc images compressed, as many fetched and waiting for a slot.
				perImage, perInput := (maxPixels*8+2*maxImage)>>20, maxImage>>20
				if concurrency != 2*conc || memory < 256+conc*(perImage+perInput) {
					t.Errorf("compressImage at concurrency %d: %d deliveries and %d MiB for %d images of %d MiB and %d inputs of %d MiB",
						conc, concurrency, memory, conc, perImage, conc, perInput)
				}
			}
		}
	}
	// The functions get those sizes.
	fn := mustFind(t, blocks, "resource", "google_cloudfunctions2_function", "fn")
	sc := childBlocks(fn.Body, "service_config")[0].Body
	for attr, want := range map[string]string{"available_cpu": "each.value.cpu", "available_memory": "each.value.memory",
		"max_instance_request_concurrency": "each.value.concurrency"} {
		if a, ok := sc.Attributes[attr]; !ok || exprText(a.Expr) != want {
			t.Errorf("service_config.%s is not %s", attr, want)
		}
	}
	// The sizing uses the limits the functions are given.
	e := newEvaluator(t, blocks, nil)
	env, _ := e.local("env")
	for _, name := range []string{"IMGPIPE_MAX_PIXELS", "IMGPIPE_MAX_IMAGE_BYTES", "IMGPIPE_MAX_DELIVERY_ATTEMPTS", "IMGPIPE_COMPRESS_CONCURRENCY"} {
		if got, want := env.GetAttr(name).AsString(), configDefault(t, name); got != want {
			t.Errorf("terraform's default %s = %s, the product's is %s", name, got, want)
		}
	}
}

// Every resource and data source waits for the APIs: it names
// google_project_service.apis in depends_on or refers, directly or through
// others, to something that does.
func TestEverythingWaitsForTheAPIs(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, p := range waitProblems(blocks) {
		t.Error(p)
	}
	e := newEvaluator(t, blocks, nil)
	apis, _ := e.local("apis")
	var enabled []string
	for it := apis.ElementIterator(); it.Next(); {
		_, v := it.Element()
		enabled = append(enabled, v.AsString())
	}
	for _, api := range []string{"cloudfunctions", "run", "cloudbuild", "artifactregistry", "pubsub", "cloudtasks", "firestore",
		"iam", "iamcredentials", "cloudresourcemanager", "secretmanager", "storage"} {
		if !slices.Contains(enabled, api+".googleapis.com") {
			t.Errorf("the API %s.googleapis.com is not enabled", api)
		}
	}
}

// Firestore: the (default) database in Native mode at a configurable
// location, and TTL policies on the fields the code sets to expire
// documents: API rate counters and staged upload chunks.
func TestFirestoreDatabaseAndTTL(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	e := newEvaluator(t, blocks, nil)
	dbs := ofType(blocks, "resource", "google_firestore_database")
	if len(dbs) != 1 {
		t.Fatalf("%d Firestore databases, want 1", len(dbs))
	}
	db := dbs[0].Body
	if e.str(t, db, "name") != "(default)" || e.str(t, db, "type") != "FIRESTORE_NATIVE" || exprText(db.Attributes["location_id"].Expr) != "local.firestore_location" {
		t.Errorf("the database is not (default), native, at local.firestore_location")
	}
	ttl := map[string]bool{}
	for _, f := range ofType(blocks, "resource", "google_firestore_field") {
		if len(childBlocks(f.Body, "ttl_config")) == 0 {
			continue
		}
		field := e.str(t, f.Body, "field")
		fe, ok := f.Body.Attributes["for_each"]
		if !ok {
			ttl[e.str(t, f.Body, "collection")+"."+field] = true
			continue
		}
		if exprText(f.Body.Attributes["collection"].Expr) != "each.value" {
			t.Errorf("%s: for_each, but the collection is %s", f.Addr(), exprText(f.Body.Attributes["collection"].Expr))
		}
		for it := e.value(t, fe.Expr).ElementIterator(); it.Next(); {
			_, v := it.Element()
			ttl[v.AsString()+"."+field] = true
		}
	}
	for _, want := range []string{"apiRates.expireAt", "chunks.expireAt"} {
		if !ttl[want] {
			t.Errorf("no TTL policy on %s (have %v)", want, ttl)
		}
	}
}

// The functions build from an object named by the archive's content hash,
// as a build account of our own.
func TestFunctionsBuildFromHashedSourceAsOwnAccount(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	e := newEvaluator(t, blocks, nil)
	obj := mustFind(t, blocks, "resource", "google_storage_bucket_object", "source")
	if name := exprText(obj.Body.Attributes["name"].Expr); !strings.Contains(name, "filesha256(var.source_archive)") {
		t.Errorf("the source object is named %s: not by its content, so a change would not rebuild", name)
	}
	fn := mustFind(t, blocks, "resource", "google_cloudfunctions2_function", "fn")
	bc := childBlocks(fn.Body, "build_config")[0].Body
	if got := e.str(t, bc, "service_account"); !strings.Contains(got, "imgpipe-build@") {
		t.Errorf("builds run as %q, want the imgpipe-build account", got)
	}
	src := childBlocks(childBlocks(bc, "source")[0].Body, "storage_source")[0].Body
	if exprText(src.Attributes["object"].Expr) != "google_storage_bucket_object.source.name" {
		t.Errorf("the functions build from %s, not the uploaded archive", exprText(src.Attributes["object"].Expr))
	}
	roles := map[string]bool{}
	for _, typ := range []string{"google_project_iam_member", "google_artifact_registry_repository_iam_member"} {
		for _, b := range ofType(blocks, "resource", typ) {
			if !strings.Contains(exprText(b.Body.Attributes["member"].Expr), "google_service_account.build.") {
				continue
			}
			if fe, ok := b.Body.Attributes["for_each"]; ok {
				for it := e.value(t, fe.Expr).ElementIterator(); it.Next(); {
					_, v := it.Element()
					roles[v.AsString()] = true
				}
			} else {
				roles[e.str(t, b.Body, "role")] = true
			}
		}
	}
	for _, want := range []string{"roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectViewer"} {
		if !roles[want] {
			t.Errorf("the build account lacks %s (has %v)", want, roles)
		}
	}
}

// secretsOfTerraform are the product's secrets: the environment variable,
// the Secret Manager secret and version resources, the variable that
// writes it.
var secretsOfTerraform = []struct{ env, resource, variable string }{
	{"IMGPIPE_WEBHOOK_SECRETS", "webhook", "webhook_secrets"},
	{"IMGPIPE_VIEW_LINK_KEYS", "view_link_keys", "view_link_keys"},
}

// Each secret comes from a Secret Manager secret of its own, written
// write-only from an ephemeral variable, read by the functions' account
// alone (its versions: TestSecretVersionsNeverRollBack); no IMGPIPE_
// variable the product requires is missing, and every one Terraform sets is
// one the product reads.
func TestSecretsAndEnvironment(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	e := newEvaluator(t, blocks, nil)
	env, _ := e.local("env")
	set := map[string]bool{}
	for name := range env.AsValueMap() {
		set[name] = true
	}
	fn := mustFind(t, blocks, "resource", "google_cloudfunctions2_function", "fn")
	sc := childBlocks(fn.Body, "service_config")[0].Body
	fromSecret := map[string]*hclsyntax.Body{}
	for _, s := range childBlocks(sc, "secret_environment_variables") {
		key := e.str(t, s.Body, "key")
		set[key] = true
		fromSecret[key] = s.Body
	}
	known := map[string]bool{}
	for _, v := range config.Variables {
		known[v.Name] = true
		if strings.Contains(v.Doc, "(required)") && !set[v.Name] {
			t.Errorf("terraform does not set the required %s", v.Name)
		}
	}
	for name := range set {
		if !known[name] {
			t.Errorf("terraform sets %s, which the product does not read", name)
		}
	}
	functionsAccount := "serviceAccount:imgpipe-functions@acme-prod.iam.gserviceaccount.com"
	secretIDs := map[string]bool{}
	for _, sec := range secretsOfTerraform {
		if env.Type().HasAttribute(sec.env) {
			t.Errorf("%s is a plain environment variable", sec.env)
		}
		secret := mustFind(t, blocks, "resource", "google_secret_manager_secret", sec.resource)
		id := e.str(t, secret.Body, "secret_id")
		if secretIDs[id] {
			t.Errorf("%s shares the secret %s with another variable", sec.env, id)
		}
		secretIDs[id] = true
		if b, ok := fromSecret[sec.env]; !ok {
			t.Errorf("%s is not read from Secret Manager", sec.env)
		} else {
			if got := exprText(b.Attributes["secret"].Expr); got != "google_secret_manager_secret."+sec.resource+".secret_id" {
				t.Errorf("%s comes from %s", sec.env, got)
			}
		}
		sv := mustFind(t, blocks, "variable", sec.variable)
		if eph, ok := sv.Body.Attributes["ephemeral"]; !ok || e.value(t, eph.Expr) != cty.True {
			t.Errorf("var.%s is not ephemeral: its value would be kept in the plan", sec.variable)
		}
		if sens, ok := sv.Body.Attributes["sensitive"]; !ok || e.value(t, sens.Expr) != cty.True {
			t.Errorf("var.%s is not sensitive: its value would be shown", sec.variable)
		}
		granted := false
		for _, b := range ofType(blocks, "resource", "google_secret_manager_secret_iam_member") {
			if exprText(b.Body.Attributes["secret_id"].Expr) != "google_secret_manager_secret."+sec.resource+".id" {
				continue
			}
			role, member := e.str(t, b.Body, "role"), e.str(t, b.Body, "member")
			if member != functionsAccount {
				t.Errorf("%s gives %s %s on the secret of %s: only the functions may read it", b.Addr(), member, role, sec.env)
			} else if role == "roles/secretmanager.secretAccessor" {
				granted = true
			}
		}
		if !granted {
			t.Errorf("the functions' account may not read %s", sec.env)
		}
	}
}

// Every file make deploy writes under terraform/ (this machine's copy of
// the secrets) is ignored by git.
func TestDeployWritesOnlyIgnoredFiles(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(tfDir, "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	gi, err := os.ReadFile(filepath.Join(tfDir, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	ignored := map[string]bool{}
	for _, l := range strings.Split(string(gi), "\n") {
		ignored[strings.TrimSpace(l)] = true
	}
	written := regexp.MustCompile(`"\$dir/(\.[A-Za-z0-9._-]+)"`).FindAllStringSubmatch(string(script), -1)
	files := map[string]bool{}
	for _, w := range written {
		files[w[1]] = true
		if !ignored[w[1]] {
			t.Errorf("terraform/deploy.sh writes terraform/%s, which terraform/.gitignore does not ignore", w[1])
		}
	}
	for _, want := range []string{".webhook-secrets", ".view-link-keys"} {
		if !files[want] {
			t.Errorf("terraform/deploy.sh does not keep terraform/%s (keeps %v)", want, files)
		}
	}
}

// Token creation (for signed links) is granted on the functions' own
// account, never on the project; outputs are public only when chosen.
func TestSigningRightsAreNarrow(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	e := newEvaluator(t, blocks, nil)
	for _, b := range ofType(blocks, "resource", "google_project_iam_member") {
		if strings.Contains(exprText(b.Body.Attributes["role"].Expr), "serviceAccountTokenCreator") ||
			strings.Contains(exprText(b.Body.Attributes["for_each"].Expr), "serviceAccountTokenCreator") {
			t.Errorf("%s grants token creation on the whole project", b.Addr())
		}
	}
	self := false
	for _, b := range ofType(blocks, "resource", "google_service_account_iam_member") {
		if e.str(t, b.Body, "role") == "roles/iam.serviceAccountTokenCreator" {
			account := e.str(t, b.Body, "service_account_id")
			member := e.str(t, b.Body, "member")
			self = strings.HasSuffix(account, "/imgpipe-functions@acme-prod.iam.gserviceaccount.com") && member == "serviceAccount:imgpipe-functions@acme-prod.iam.gserviceaccount.com"
			if !self {
				t.Errorf("%s lets %s mint tokens of %s", b.Addr(), member, account)
			}
		}
	}
	if !self {
		t.Error("the functions' account may not sign its own links")
	}
	pub := mustFind(t, blocks, "resource", "google_storage_bucket_iam_member", "public_read")
	for mode, want := range map[string]int64{"public": 1, "signed": 0} {
		e := newEvaluator(t, blocks, map[string]cty.Value{"output_urls": cty.StringVal(mode)})
		n, _ := e.value(t, pub.Body.Attributes["count"].Expr).AsBigFloat().Int64()
		if n != want {
			t.Errorf("output_urls = %s: %d public read bindings, want %d", mode, n, want)
		}
		env, _ := e.local("env")
		if got := env.GetAttr("IMGPIPE_OUTPUT_URLS").AsString(); got != mode {
			t.Errorf("output_urls = %s: the functions are told %s", mode, got)
		}
	}
}

// The local stack is wired as production: the same functions, the same
// subscriptions (names, ack deadlines, retry policies, dead-letter policy,
// push path after the function's URL, never expiring), the same queue
// retry configuration.
func TestLocalStackWiredAsProduction(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	e := newEvaluator(t, blocks, nil)

	fns, _ := e.local("functions")
	var names []string
	for name := range fns.AsValueMap() {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{functions.FnAPI, functions.FnCompress, functions.FnDeadLetter, functions.FnDeliver, functions.FnSweep}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("terraform deploys %v, the code registers %v", names, want)
	}
	env, _ := e.local("env")
	deliver := env.GetAttr("IMGPIPE_WEBHOOK_DELIVERY_URL").AsString()
	if u, err := url.Parse(deliver); err != nil || u.Path != "/imgpipe-"+strings.ToLower(functions.FnDeliver) {
		t.Errorf("webhooks are delivered to %s, not the deliverWebhook function", deliver)
	}
	if env.GetAttr("IMGPIPE_TASKS_OIDC_AUDIENCE").AsString() != deliver {
		t.Error("the tasks' token audience is not the delivery URL")
	}
	sweepURL := env.GetAttr("IMGPIPE_SWEEP_URL").AsString()
	if u, err := url.Parse(sweepURL); err != nil || u.Path != "/imgpipe-"+strings.ToLower(functions.FnSweep) {
		t.Errorf("the sweep URL %s is not the sweep function's", sweepURL)
	}

	cfg, err := config.LoadFrom(func(k string) string {
		v := map[string]string{"GOOGLE_CLOUD_PROJECT": "acme-prod", "IMGPIPE_BUCKET": env.GetAttr("IMGPIPE_BUCKET").AsString(),
			"IMGPIPE_PRIVATE_BUCKET":  env.GetAttr("IMGPIPE_PRIVATE_BUCKET").AsString(),
			"IMGPIPE_WEBHOOK_SECRETS": "whsec_" + strings.Repeat("A", 43) + "=", "IMGPIPE_VIEW_LINK_KEYS": strings.Repeat("B", 43) + "=",
			"IMGPIPE_WEBHOOK_DELIVERY_URL": deliver,
			"IMGPIPE_SWEEP_URL":            sweepURL, "IMGPIPE_TASKS_SERVICE_ACCOUNT": "imgpipe-pusher@acme-prod.iam.gserviceaccount.com"}
		return v[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	// The buckets the functions use (and localstack.Wire creates) are the
	// buckets Terraform creates.
	buckets := map[string]bool{}
	for _, b := range ofType(blocks, "resource", "google_storage_bucket") {
		buckets[e.str(t, b.Body, "name")] = true
	}
	for _, b := range []string{cfg.Bucket, cfg.PrivateBucket} {
		if !buckets[b] {
			t.Errorf("the functions use bucket %s, which terraform does not create (it creates %v)", b, buckets)
		}
	}
	// Cloud Scheduler calls the sweep as the pusher, with a token for the
	// sweep URL: what the sweep function admits.
	jobs := ofType(blocks, "resource", "google_cloud_scheduler_job")
	if len(jobs) != 1 {
		t.Fatalf("%d Cloud Scheduler jobs, want the sweep's", len(jobs))
	}
	ht := childBlocks(jobs[0].Body, "http_target")
	if len(ht) != 1 || e.str(t, ht[0].Body, "uri") != sweepURL || e.str(t, ht[0].Body, "http_method") != "POST" {
		t.Errorf("the scheduler job does not POST to %s", sweepURL)
	} else if oidc := childBlocks(ht[0].Body, "oidc_token"); len(oidc) != 1 || e.str(t, oidc[0].Body, "audience") != sweepURL ||
		exprText(oidc[0].Body.Attributes["service_account_email"].Expr) != "google_service_account.pusher.email" {
		t.Errorf("the scheduler job's token is not the pusher's for %s", sweepURL)
	}

	const host = "http://127.0.0.1:8080"
	local := localstack.ProductionWiring(cfg, host)
	subs := ofType(blocks, "resource", "google_pubsub_subscription")
	if len(subs) != len(local.Pushes) {
		t.Errorf("terraform has %d subscriptions, the local stack %d", len(subs), len(local.Pushes))
	}
	for _, s := range subs {
		name := e.str(t, s.Body, "name")
		i := slices.IndexFunc(local.Pushes, func(p localstack.Push) bool { return p.Subscription == name })
		if i < 0 {
			t.Errorf("subscription %s: the local stack has none of that name", name)
			continue
		}
		p := local.Pushes[i]
		ref := strings.TrimSuffix(strings.TrimPrefix(exprText(s.Body.Attributes["topic"].Expr), "google_pubsub_topic."), ".id")
		if topic, ok := find(blocks, "resource", "google_pubsub_topic", ref); !ok {
			t.Errorf("subscription %s reads %s, not a topic of ours", name, exprText(s.Body.Attributes["topic"].Expr))
		} else if got := e.str(t, topic.Body, "name"); got != p.Topic {
			t.Errorf("subscription %s reads topic %s, locally %s", name, got, p.Topic)
		}
		if got := e.str(t, s.Body, "ack_deadline_seconds"); got != strconv.Itoa(int(p.AckDeadline/time.Second)) {
			t.Errorf("subscription %s: ack deadline %ss, locally %v", name, got, p.AckDeadline)
		}
		rp := childBlocks(s.Body, "retry_policy")
		if len(rp) != 1 || e.str(t, rp[0].Body, "minimum_backoff") != durationText(p.MinBackoff) || e.str(t, rp[0].Body, "maximum_backoff") != durationText(p.MaxBackoff) {
			t.Errorf("subscription %s: retry policy differs from the local %v..%v", name, p.MinBackoff, p.MaxBackoff)
		}
		dl := childBlocks(s.Body, "dead_letter_policy")
		switch {
		case len(dl) == 0 && p.DeadLetterTopic != "":
			t.Errorf("subscription %s: no dead-letter policy, locally to %s", name, p.DeadLetterTopic)
		case len(dl) == 1:
			if got := e.str(t, dl[0].Body, "max_delivery_attempts"); got != strconv.Itoa(p.MaxDeliveryAttempts) {
				t.Errorf("subscription %s: %s delivery attempts, locally %d", name, got, p.MaxDeliveryAttempts)
			}
		}
		ep := childBlocks(s.Body, "expiration_policy")
		if len(ep) != 1 || e.str(t, ep[0].Body, "ttl") != "" {
			t.Errorf("subscription %s expires when idle: set expiration_policy { ttl = \"\" }", name)
		}
		pc := childBlocks(s.Body, "push_config")[0].Body
		endpoint := e.str(t, pc, "push_endpoint")
		fnKey := ""
		for _, k := range names {
			if strings.HasPrefix(endpoint, functionURI(k)) {
				fnKey = k
			}
		}
		if fnKey == "" {
			t.Errorf("subscription %s pushes to %s, not a function", name, endpoint)
			continue
		}
		prodPath := strings.TrimPrefix(endpoint, functionURI(fnKey))
		localPath := strings.TrimPrefix(p.Endpoint, host+"/"+fnKey)
		if prodPath != localPath || !strings.HasPrefix(p.Endpoint, host+"/"+fnKey+"/") {
			t.Errorf("subscription %s pushes to %s…%s in production, %s locally", name, fnKey, prodPath, p.Endpoint)
		}
		oidc := childBlocks(pc, "oidc_token")
		if len(oidc) != 1 || e.str(t, oidc[0].Body, "audience") != functionURI(fnKey) {
			t.Errorf("subscription %s: the push token's audience is not the function's URL", name)
		}
	}

	q := mustFind(t, blocks, "resource", "google_cloud_tasks_queue", "webhooks")
	rc := childBlocks(q.Body, "retry_config")[0].Body
	for attr, v := range map[string]string{
		"max_attempts": strconv.Itoa(cfg.WebhookMaxAttempts), "min_backoff": durationText(cfg.WebhookMinBackoff),
		"max_backoff": durationText(cfg.WebhookMaxBackoff), "max_doublings": strconv.Itoa(cfg.WebhookMaxDoublings),
	} {
		if got := e.str(t, rc, attr); got != v {
			t.Errorf("webhook queue %s = %s in terraform, %s locally", attr, got, v)
		}
	}
	if got := e.str(t, q.Body, "name"); got != cfg.WebhookQueue {
		t.Errorf("webhook queue %s in terraform, %s locally", got, cfg.WebhookQueue)
	}
}

func durationText(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

// Reports and thumbnails have a bucket of their own: the functions are
// told its name and may write it; reports are deleted after 7 days,
// thumbnails a day after every status page link to them expired.
func TestPrivateBucketWiringAndLifecycle(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, ttl := range []string{"", "2160h", "1h"} {
		var overrides map[string]cty.Value
		if ttl != "" {
			overrides = map[string]cty.Value{"view_link_ttl": cty.StringVal(ttl)}
		}
		e := newEvaluator(t, blocks, overrides)
		env, _ := e.local("env")
		priv := mustFind(t, blocks, "resource", "google_storage_bucket", "private").Body
		name := e.str(t, priv, "name")
		if got := env.GetAttr("IMGPIPE_PRIVATE_BUCKET").AsString(); got != name {
			t.Errorf("the functions are told the private bucket is %s; it is %s", got, name)
		}
		if name == env.GetAttr("IMGPIPE_BUCKET").AsString() {
			t.Error("the private bucket is the output bucket")
		}
		linkTTL, err := time.ParseDuration(env.GetAttr("IMGPIPE_VIEW_LINK_TTL").AsString())
		if err != nil {
			t.Fatal(err)
		}
		want := ttl
		if want == "" {
			want = configDefault(t, "IMGPIPE_VIEW_LINK_TTL")
		}
		if w, _ := time.ParseDuration(want); linkTTL != w {
			t.Errorf("view_link_ttl %q: the functions are told %v", ttl, linkTTL)
		}
		ages := map[string]int64{}
		for _, r := range childBlocks(priv, "lifecycle_rule") {
			if a := childBlocks(r.Body, "action"); len(a) != 1 || e.str(t, a[0].Body, "type") != "Delete" {
				continue
			}
			c := childBlocks(r.Body, "condition")[0].Body
			age, _ := e.value(t, c.Attributes["age"].Expr).AsBigFloat().Int64()
			for it := e.value(t, c.Attributes["matches_prefix"].Expr).ElementIterator(); it.Next(); {
				_, p := it.Element()
				ages[p.AsString()] = age
			}
		}
		if ages["reports/"] != 7 {
			t.Errorf("reports/ is deleted after %d days, want 7", ages["reports/"])
		}
		if kept := time.Duration(ages["thumbs/"]) * 24 * time.Hour; kept < linkTTL+24*time.Hour {
			t.Errorf("view_link_ttl %v: thumbs/ is deleted after %v, before a link to them expires (and a day)", linkTTL, kept)
		}
		grants, problems := iamGrants(e, blocks)
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		if !slices.ContainsFunc(grants, func(g iamGrant) bool {
			return g.Target == name && g.Role == "roles/storage.objectAdmin" && g.Member == "serviceAccount:imgpipe-functions@acme-prod.iam.gserviceaccount.com"
		}) {
			t.Error("the functions' account may not write the private bucket")
		}
	}
}
