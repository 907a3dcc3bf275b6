package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped example previews with no AWS credentials, no config files
// and no network: every step, every call.
func TestMigratePlanExampleNeedsNoCredentials(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	code, stdout, stderr := runCLI("migrate", "plan", "--plan", "../../examples/migration.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"source-prep", "share-key", "kms:CreateKey", "rds:ModifyDBSnapshotAttribute", "ValuesToAdd=222222222222",
		"rds:RestoreDBInstanceFromDBSnapshot", "ec2:AcceptVpcPeeringConnection", "channel source-target",
		"SET GLOBAL read_only = ON", "route53:ChangeResourceRecordSets", "kms:ScheduleKeyDeletion",
		"CALL mysql.rds_set_configuration('binlog retention hours', 72)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan output lacks %q", want)
		}
	}
	if _, err := os.Stat("pitcrew-migrate"); err == nil {
		t.Error("plan created the data dir: the preview must not write anything")
	}
}

// A bad plan is one line naming the cause and the fix, exit 1.
func TestMigrateBadPlans(t *testing.T) {
	example, err := os.ReadFile("../../examples/migration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"overlapping CIDRs", "cidr: 10.1.0.0/16", "cidr: 10.0.128.0/17", "overlaps"},
		{"AWS-managed share key", `kms_key: ""
  # The source's network`, `kms_key: alias/aws/rds
  # The source's network`, "AWS-managed"},
		{"unknown key", "quiet_period: 72h", "quiet_periods: 72h", `unknown key "options.quiet_periods"`},
		{"last weight not 100", "weights: [10, 50, 100]", "weights: [10, 50]", "the last step must be 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(string(example), tc.from, tc.to, 1)
			if text == string(example) {
				t.Fatalf("%q not in the example", tc.from)
			}
			path := filepath.Join(t.TempDir(), "plan.yaml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI("migrate", "plan", "--plan", path)
			if code != 1 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line with %q", code, stderr, tc.want)
			}
		})
	}
}

// status, confirm and a rollback preview on a migration that has not
// started: nothing failed, the next step named, nothing to roll back.
func TestMigrateStatusConfirmRollbackPreview(t *testing.T) {
	example, err := os.ReadFile("../../examples/migration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.yaml")
	text := strings.Replace(string(example), "data_dir: ./pitcrew-migrate", "data_dir: "+filepath.Join(dir, "data"), 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("migrate", "status", "--plan", path)
	if code != 0 || !strings.Contains(stdout, "next: source-prep") || strings.Count(stdout, "pending") != 10 {
		t.Errorf("status: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI("migrate", "rollback", "--dry-run", "--plan", path)
	if code != 0 || !strings.Contains(stdout, "nothing to roll back") {
		t.Errorf("rollback --dry-run: exit %d: %s", code, stdout)
	}
	if code, _, stderr := runCLI("migrate", "confirm", "--plan", path); code != 0 {
		t.Fatalf("confirm: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "confirm-cutover")); err != nil {
		t.Errorf("confirm left no file for the waiting run: %v", err)
	}
	if code, _, stderr := runCLI("migrate", "launch", "--plan", path); code != exitUsage || !strings.Contains(stderr, "unknown migrate subcommand") {
		t.Errorf("unknown subcommand: exit %d: %s", code, stderr)
	}
}

// migrate status is read-only: before anything ran it creates nothing and
// names apply, not resume, as the next command.
func TestMigrateStatusBeforeApplyCreatesNothing(t *testing.T) {
	example, err := os.ReadFile("../../examples/migration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(example), "data_dir: ./pitcrew-migrate", "data_dir: "+dir, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("migrate", "status", "--plan", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "(pitcrew migrate apply)") || strings.Contains(stdout, "resume") {
		t.Errorf("before the first apply, status should point at apply:\n%s", stdout)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("status created %s (err %v): a read-only command must not write", dir, err)
	}
}
