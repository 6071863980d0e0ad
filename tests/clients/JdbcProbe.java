// Driven by tests/test_clients_jdbc.py: pgjdbc against QuackML (argument: the port).
import java.sql.*;

public class JdbcProbe {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/quackml?user=tester&sslmode=disable";
        try (Connection c = DriverManager.getConnection(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE OR REPLACE TABLE jd_t (id INTEGER PRIMARY KEY, name VARCHAR, ok BOOLEAN, amount DECIMAL(10,2))");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jd_t VALUES (?, ?, ?, ?)")) {
                for (int i = 0; i < 8; i++) {
                    p.setInt(1, i); p.setString(2, "n" + i); p.setBoolean(3, i % 2 == 0);
                    p.setBigDecimal(4, new java.math.BigDecimal(i + ".25"));
                    if (p.executeUpdate() != 1) throw new AssertionError("count");
                }
            }
            try (PreparedStatement p = c.prepareStatement("SELECT name, ok, amount FROM jd_t WHERE id = ?")) {
                for (int i = 0; i < 8; i++) {
                    p.setInt(1, i);
                    try (ResultSet r = p.executeQuery()) {
                        r.next();
                        if (!r.getString(1).equals("n" + i)) throw new AssertionError("name " + i);
                        if (r.getBoolean(2) != (i % 2 == 0)) throw new AssertionError("bool " + i);
                        if (r.getBigDecimal(3).compareTo(new java.math.BigDecimal(i + ".25")) != 0) throw new AssertionError("dec " + i);
                    }
                }
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                System.out.println("update " + s.executeUpdate("UPDATE jd_t SET ok = false WHERE id < 3"));
            }
            c.rollback();
            c.setAutoCommit(true);
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet r = md.getSchemas()) { while (r.next()) System.out.println("schema " + r.getString(1)); }
            try (ResultSet r = md.getTables(null, null, "jd%", new String[]{"TABLE"})) { while (r.next()) System.out.println("table " + r.getString(2) + "." + r.getString(3)); }
            try (ResultSet r = md.getColumns(null, null, "jd_t", null)) { while (r.next()) System.out.println("column " + r.getString(4) + " " + r.getString(6)); }
            try (ResultSet r = md.getPrimaryKeys(null, null, "jd_t")) { while (r.next()) System.out.println("pk " + r.getString(4)); }
            try (ResultSet r = md.getFunctions(null, null, "%")) { int n = 0; while (r.next()) n++; System.out.println("functions " + n); }
            System.out.println("OK");
        }
    }
}
