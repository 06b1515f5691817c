package manifests_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

const (
	rulesFile          = "alerts/ebb.rules.yaml"
	prometheusRuleFile = "alerts/ebb-alerts.yaml"
	dashboardFile      = "grafana/ebb.json"
	runbooks           = "../docs/alerts.md"
	runbookBase        = "https://github.com/ebbscale/ebb/blob/main/docs/alerts.md#"
)

// ruleFile is a Prometheus rules file.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// dashboard is the part of a Grafana dashboard model the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Panels  []panel                   `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// theDatasource is the dashboard's datasource variable, which every panel and query must use.
var theDatasource = &datasource{Type: "prometheus", UID: "${datasource}"}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// query is one PromQL expression of the dashboard or the alerts, and where it is.
type query struct {
	where, expr string
}

// monitoringQueries returns every PromQL expression of the dashboard (panel queries, and the selectors
// inside the variables' label_values()) and of the alert rules.
func monitoringQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	d := readDashboard(t)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: variable %s: query: %v", dashboardFile, v.Name, err)
		}
		expr, ok := labelValuesSelector(q.Query)
		if !ok {
			t.Errorf("%s: variable %s: query %q is not label_values(<selector>, <label>)", dashboardFile, v.Name, q.Query)
			continue
		}
		qs = append(qs, query{where: dashboardFile + ": variable " + v.Name, expr: expr})
	}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs = append(qs, query{where: fmt.Sprintf("%s: panel %q query %s", dashboardFile, p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{where: rulesFile + ": " + r.Alert, expr: r.Expr})
		}
	}
	return qs
}

// labelValuesSelector returns the selector of Grafana's label_values(<selector>, <label>).
func labelValuesSelector(q string) (string, bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(q), "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", false
	}
	return strings.TrimSpace(inner[:i]), true
}

// grafanaVariable matches $name, ${name} and ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// withoutGrafanaVariables replaces Grafana's variables with what PromQL accepts in their place: a
// duration for the interval variables, a plain word for the others (they stand in label matchers).
func withoutGrafanaVariables(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		m := grafanaVariable.FindStringSubmatch(v)
		if strings.HasPrefix(m[1]+m[2], "__") { // $__rate_interval, $__interval, $__range
			return "5m"
		}
		return "x"
	})
}

// selector is one series selector of a query: the metric name and the labels it matches on.
type selector struct {
	metric string
	labels []string
}

// selectors parses expr (with Grafana's variables replaced) and returns its series selectors.
func selectors(expr string) ([]selector, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(withoutGrafanaVariables(expr))
	if err != nil {
		return nil, err
	}
	var out []selector
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				if s.metric == "" {
					s.metric = m.Value
				}
				continue
			}
			s.labels = append(s.labels, m.Name)
		}
		if s.metric == "" {
			errs = append(errs, fmt.Errorf("selector %s names no metric", vs))
		}
		out = append(out, s)
		return nil
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// TestAlertRules checks the rules file's structure, and that the PrometheusRule carries the same rules.
func TestAlertRules(t *testing.T) {
	rf := readRules(t)
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no rule groups", rulesFile)
	}
	docs, err := os.ReadFile(runbooks)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert: %+v", g.Name, r)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr); err != nil {
				t.Errorf("%s: expr %q: %v", r.Alert, r.Expr, err)
			}
			if d, err := model.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("%s: for %q is not a positive duration (%v)", r.Alert, r.For, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: labels.severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotation %s is missing", r.Alert, a)
				}
			}
			for name, text := range r.Annotations {
				if err := parseAlertTemplate(text); err != nil {
					t.Errorf("%s: annotation %s: %v", r.Alert, name, err)
				}
			}
			// Alerts about one ScaledConsumer name it.
			if strings.Contains(r.Expr, "by (namespace, scaledconsumer") && !strings.Contains(r.Annotations["summary"], "{{ $labels.namespace }}/{{ $labels.scaledconsumer }}") {
				t.Errorf("%s: summary %q does not name the ScaledConsumer", r.Alert, r.Annotations["summary"])
			}
			anchor := strings.ToLower(r.Alert)
			if r.Annotations["runbook_url"] != runbookBase+anchor {
				t.Errorf("%s: runbook_url %q, want %s", r.Alert, r.Annotations["runbook_url"], runbookBase+anchor)
			}
			if !regexp.MustCompile(`(?m)^## ` + r.Alert + `$`).Match(docs) {
				t.Errorf("%s: docs/alerts.md has no section \"## %s\" for the runbook link", r.Alert, r.Alert)
			}
		}
	}
	for _, want := range []string{"EbbConsumersUnhealthy", "EbbTriggerFailing", "EbbFallbackActive", "EbbStaleMetricValues",
		"EbbMetricsAPIErrors", "EbbMetricsAPISlow", "EbbReconcileErrors", "EbbDown"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}

	b, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec ruleFile `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &pr); err != nil {
		t.Fatalf("%s: %v", prometheusRuleFile, err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Namespace != "ebb-system" {
		t.Errorf("%s is a %s %s in %q, want a monitoring.coreos.com/v1 PrometheusRule in ebb-system", prometheusRuleFile, pr.APIVersion, pr.Kind, pr.Metadata.Namespace)
	}
	if diff := cmp.Diff(pr.Spec, rf); diff != "" {
		t.Errorf("%s's spec differs from %s (-PrometheusRule +rules file):\n%s", prometheusRuleFile, rulesFile, diff)
	}
}

// parseAlertTemplate parses an annotation as Prometheus does (text/template, with $labels and $value
// defined), with its template functions stubbed.
func parseAlertTemplate(text string) error {
	stub := func(...any) string { return "" }
	funcs := template.FuncMap{}
	for _, f := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
		"query", "first", "label", "value", "title", "toUpper", "toLower", "reReplaceAll", "match", "args", "safeHtml",
		"externalURL", "pathPrefix", "stripPort", "stripDomain", "sortByLabel", "strvalue", "graphLink", "tableLink"} {
		funcs[f] = stub
	}
	_, err := template.New("annotation").Funcs(funcs).Option("missingkey=zero").
		Parse("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}" + text)
	return err
}

// TestDashboard checks the dashboard model: it parses, every panel has queries on the datasource
// variable, every query parses, and the variables ask for namespaces and ScaledConsumers.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && !cmp.Equal(v.Datasource, theDatasource) {
			t.Errorf("variable %s: datasource %+v, want %+v", v.Name, v.Datasource, theDatasource)
		}
	}
	if diff := cmp.Diff(vars, map[string]string{"datasource": "datasource", "namespace": "query", "scaledconsumer": "query"}); diff != "" {
		t.Errorf("template variables (-got +want):\n%s", diff)
	}
	ids := map[int]bool{}
	for _, p := range allPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is taken", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no size (gridPos)", p.Title)
		}
		if p.Type == "row" || p.Type == "text" {
			continue
		}
		if !cmp.Equal(p.Datasource, theDatasource) {
			t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, theDatasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
				t.Errorf("panel %q: a query without expr or refId", p.Title)
			}
			if !cmp.Equal(tg.Datasource, theDatasource) {
				t.Errorf("panel %q query %s: datasource %+v, want %+v", p.Title, tg.RefID, tg.Datasource, theDatasource)
			}
		}
	}
	for _, q := range monitoringQueries(t) {
		if _, err := selectors(q.expr); err != nil {
			t.Errorf("%s: %q: %v", q.where, q.expr, err)
		}
	}
}

// TestMonitoringKustomization builds manifests/monitoring: the PodMonitor scrapes ebb's metrics port, the
// dashboard ConfigMap carries the sidecar's label and the dashboard file, and the PrometheusRule is there.
func TestMonitoringKustomization(t *testing.T) {
	testenv.Requires(t, "kubectl")
	bin, err := localcluster.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "kubectl"), "kustomize", "monitoring")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize monitoring: %v\n%s", err, stderr.String())
	}
	type object struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			PodMetricsEndpoints []struct {
				Port string `json:"port"`
				Path string `json:"path"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	objects := map[string]object{}
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		objects[o.Kind] = o
	}
	if got := slices.Sorted(maps.Keys(objects)); !cmp.Equal(got, []string{"ConfigMap", "PodMonitor", "PrometheusRule"}) {
		t.Fatalf("kinds %v, want ConfigMap, PodMonitor, PrometheusRule", got)
	}

	cm := objects["ConfigMap"]
	dash, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Metadata.Labels["grafana_dashboard"] != "1" || cm.Data["ebb.json"] != string(dash) {
		t.Errorf("dashboard ConfigMap: labels %v, ebb.json equal to %s: %v; want the label grafana_dashboard: \"1\" and the file",
			cm.Metadata.Labels, dashboardFile, cm.Data["ebb.json"] == string(dash))
	}

	// The PodMonitor's port is a named port of ebb's pods, and its selector their label.
	b, err := os.ReadFile("deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var deploy struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec struct {
					Containers []struct {
						Args  []string `json:"args"`
						Ports []struct {
							Name          string `json:"name"`
							ContainerPort int    `json:"containerPort"`
						} `json:"ports"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(strings.Split(string(b), "\n---\n")[0]), &deploy); err != nil {
		t.Fatal(err)
	}
	pm := objects["PodMonitor"]
	for k, v := range pm.Spec.Selector.MatchLabels {
		if deploy.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("PodMonitor selects %s=%s, which ebb's pods do not carry", k, v)
		}
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Fatalf("PodMonitor endpoints %+v, want one on /metrics", pm.Spec.PodMetricsEndpoints)
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	port := -1
	for _, p := range c.Ports {
		if p.Name == pm.Spec.PodMetricsEndpoints[0].Port {
			port = p.ContainerPort
		}
	}
	if want := fmt.Sprintf("--metrics-bind-address=:%d", port); port < 0 || !slices.Contains(c.Args, want) {
		t.Errorf("PodMonitor scrapes port %q (%d), but ebb's container args do not have %s", pm.Spec.PodMetricsEndpoints[0].Port, port, want)
	}
}
