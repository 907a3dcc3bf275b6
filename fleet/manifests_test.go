package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/infra"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Every generated manifest decodes strictly (unknown fields fail) into the
// Kubernetes API types, and the invariants hold: one replica, the data dir
// on the claim, the probes, passwords only as Secret references.
func TestManifests(t *testing.T) {
	t.Setenv("ORDERS_SOURCE_PW", "s3cret-orders-src")
	t.Setenv("ORDERS_TARGET_PW", "s3cret-orders-tgt")
	yml := `name: estate
kubernetes: {namespace: shop, image: registry.example.com/pitcrew:v1, storage: 20Gi, storage_class: fast}
databases:
  - name: orders
    tps: 2000
    source_password_env: ORDERS_SOURCE_PW
    target_password_env: ORDERS_TARGET_PW
    migration:
      source: {database: {host: old-orders.internal, password: s3cret-inline}}
      target: {database: {host: new-orders.internal}}
  - name: users
    migration:
      source: {database: {host: old-users.internal}}
      target: {database: {host: new-users.internal}}
applications:
  - {name: shop, databases: [orders, users], hook: ./move-shop.sh}
`
	f, err := Parse([]byte(yml), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := WriteManifests(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v, want one per database and the ServiceMonitor", files)
	}
	var services []corev1.Service
	kinds := map[string]int{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"s3cret-orders-src", "s3cret-orders-tgt", "s3cret-inline"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds the password %s", file, secret)
			}
		}
		db := strings.TrimSuffix(filepath.Base(file), ".yaml")
		var cm corev1.ConfigMap
		var sts appsv1.StatefulSet
		for _, doc := range strings.Split(string(b), "\n---\n") {
			var head struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			kinds[head.Kind]++
			var into any
			switch head.Kind {
			case "ConfigMap":
				into = &cm
			case "StatefulSet":
				into = &sts
			case "Service":
				services = append(services, corev1.Service{})
				into = &services[len(services)-1]
			case "PodDisruptionBudget":
				into = &policyv1.PodDisruptionBudget{}
			case "ServiceMonitor":
				into = &monitoringv1.ServiceMonitor{}
			default:
				t.Fatalf("%s: unexpected kind %q", file, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
				t.Fatalf("%s: %s does not decode strictly: %v", file, head.Kind, err)
			}
			if pdb, ok := into.(*policyv1.PodDisruptionBudget); ok {
				if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != db {
					t.Errorf("%s: PodDisruptionBudget %+v", file, pdb.Spec)
				}
			}
			if sm, ok := into.(*monitoringv1.ServiceMonitor); ok {
				if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
				}
				sel := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
				for _, s := range services {
					if !sel.Matches(labels.Set(s.Labels)) {
						t.Errorf("the ServiceMonitor does not select service %s", s.Name)
					}
				}
			}
		}
		if db == "servicemonitor" {
			continue
		}
		// The ConfigMap: the database's plan, no secret; decodes strictly.
		var plan infra.Plan
		if err := decode([]byte(cm.Data["migration.yaml"]), "plan", "ConfigMap "+cm.Name, &plan); err != nil {
			t.Fatal(err)
		}
		if plan.Source.Database.Password != "" || plan.Target.Database.Password != "" || plan.ConsoleToken != "" {
			t.Errorf("%s: the ConfigMap's plan carries a secret", db)
		}
		plan.Default()
		if err := plan.Validate(); err != nil {
			t.Errorf("%s: the ConfigMap's plan: %v", db, err)
		}
		// The StatefulSet.
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
			t.Errorf("%s: replicas %v, want 1", db, sts.Spec.Replicas)
		}
		pod := sts.Spec.Template.Spec
		if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 30 {
			t.Errorf("%s: terminationGracePeriodSeconds %v: a graceful stop must outlast a batch", db, g)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers", db, len(pod.Containers))
		}
		c := pod.Containers[0]
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.MountPath == plan.DataDir && m.Name == sts.Spec.VolumeClaimTemplates[0].Name {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s: no claim mounted at data_dir %s (mounts %+v)", db, plan.DataDir, c.VolumeMounts)
		}
		if sc := sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName; sc == nil || *sc != "fast" {
			t.Errorf("%s: storage class %v", db, sc)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: probes %+v %+v", db, c.LivenessProbe, c.ReadinessProbe)
		}
		for _, e := range c.Env {
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "pitcrew-passwords" {
				t.Errorf("%s: env %s is not a Secret reference: %+v", db, e.Name, e)
			}
		}
		wantCPU := map[string]string{"orders": "800m", "users": "200m"}[db]
		if got := c.Resources.Requests[corev1.ResourceCPU]; got.Cmp(resource.MustParse(wantCPU)) != 0 {
			t.Errorf("%s: cpu request %s, want %s (tps x 0.4 ms)", db, got.String(), wantCPU)
		}
		if got := c.Resources.Requests[corev1.ResourceMemory]; got.Cmp(resource.MustParse("192Mi")) != 0 {
			t.Errorf("%s: memory request %s", db, got.String())
		}
		if !labels.SelectorFromSet(sts.Spec.Selector.MatchLabels).Matches(labels.Set(sts.Spec.Template.Labels)) {
			t.Errorf("%s: the selector does not match the pod's labels", db)
		}
		if db == "orders" && c.Env[0].ValueFrom.SecretKeyRef.Key != "orders-source-pw" {
			t.Errorf("orders: source password key %s", c.Env[0].ValueFrom.SecretKeyRef.Key)
		}
	}
	// The decoder is strict: a misspelt field fails.
	if err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: StatefulSet\nspec: {replica: 1}\n"), &appsv1.StatefulSet{}); err == nil {
		t.Error("a misspelt field decoded")
	}
	if kinds["StatefulSet"] != 2 || kinds["ConfigMap"] != 2 || kinds["Service"] != 2 || kinds["PodDisruptionBudget"] != 2 || kinds["ServiceMonitor"] != 1 {
		t.Errorf("kinds %v", kinds)
	}
}
