package ddl

import "testing"

func TestPlace(t *testing.T) {
	for _, c := range []struct {
		text string
		want Placed
		ok   bool
	}{
		{"CREATE USER 'a'@'%' IDENTIFIED BY 'x'", Placed{}, true},
		{"CREATE OR REPLACE ROLE r", Placed{}, true},
		{"GRANT r TO 'a'@'%'", Placed{}, true},
		{"GRANT SELECT ON *.* TO a", Placed{}, true},
		{"GRANT PROXY ON ''@'%' TO a", Placed{}, true},
		{"GRANT SELECT, INSERT ON other.* TO a", Placed{Database: "other", Qualified: true}, true},
		{"GRANT SELECT ON * TO a", Placed{Database: "def"}, true},
		{"GRANT SELECT (c) ON `sh op`.`t` TO a", Placed{Database: "sh op", Table: "t", Qualified: true}, true},
		{"REVOKE UPDATE ON t FROM a", Placed{Database: "def", Table: "t"}, true},
		{"GRANT EXECUTE ON PROCEDURE other.p TO a", Placed{Database: "other", Table: "p", Routine: true, Qualified: true}, true},
		{"CREATE DEFINER=`app`@`%` PROCEDURE other.p() SELECT 1", Placed{Database: "other", Qualified: true}, true},
		{"CREATE DEFINER='app'@'%' FUNCTION f(x INT) RETURNS INT RETURN x", Placed{Database: "def"}, true},
		{"DROP PROCEDURE IF EXISTS `x`.`p`", Placed{Database: "x", Qualified: true}, true},
		{"CREATE EVENT IF NOT EXISTS e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", Placed{Database: "def"}, true},
		{"ALTER EVENT other.e DISABLE", Placed{Database: "other", Qualified: true}, true},
		{"CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", Placed{Database: "def", Table: "t"}, true},
		{"CREATE TRIGGER other.tr AFTER DELETE ON other.t FOR EACH ROW SET @x = 1", Placed{Database: "other", Table: "t", Qualified: true}, true},
		{"DROP TRIGGER IF EXISTS other.tr", Placed{Database: "other", Qualified: true}, true},
		{"CREATE AGGREGATE FUNCTION udf RETURNS STRING SONAME 'udf.so'", Placed{}, true},
		{"CREATE VIEW v AS SELECT 1", Placed{}, false},
		{"FLUSH PRIVILEGES", Placed{}, false},
	} {
		got, ok := Place("def", c.text, 0)
		if got != c.want || ok != c.ok {
			t.Errorf("Place(%q) = %+v, %v; want %+v, %v", c.text, got, ok, c.want, c.ok)
		}
	}
}
