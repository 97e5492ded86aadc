package sample;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import javax.servlet.ServletContext;
import javax.servlet.ServletException;

/**
 * What the WAR knows about itself: Maven coordinates from its own
 * META-INF/maven/.../pom.properties and the behaviour mode baked in by the
 * builder (WEB-INF/sample-mode.properties). Read once per servlet init.
 */
final class AppInfo {
    static final String MAVEN_DIR = "/META-INF/maven/";
    static final String MODE_FILE = "/WEB-INF/sample-mode.properties";

    final String groupId;
    final String artifactId;
    final String version;
    final String mode;
    final long startupDelayMs;

    private AppInfo(Properties pom, Properties modeProps) {
        this.groupId = pom.getProperty("groupId", "unknown");
        this.artifactId = pom.getProperty("artifactId", "unknown");
        this.version = pom.getProperty("version", "unknown");
        this.mode = modeProps.getProperty("mode", "ok").trim();
        this.startupDelayMs = parseDelay(modeProps.getProperty("startup_delay_ms", "0"));
    }

    /** "groupId:artifactId version", the identity /status reports. */
    String coordinates() {
        return groupId + ":" + artifactId + " " + version;
    }

    static AppInfo load(ServletContext ctx) throws ServletException {
        String pomPath = findPomProperties(ctx);
        Properties pom = readProperties(ctx, pomPath);
        if (pom == null) {
            throw new ServletException("cannot read " + pomPath);
        }
        Properties modeProps = readProperties(ctx, MODE_FILE);
        return new AppInfo(pom, modeProps == null ? new Properties() : modeProps);
    }

    /** Discovers META-INF/maven/<g>/<a>/pom.properties without knowing g or a. */
    private static String findPomProperties(ServletContext ctx) throws ServletException {
        Set<String> found = new TreeSet<>();
        for (String groupDir : children(ctx, MAVEN_DIR)) {
            for (String artifactDir : children(ctx, groupDir)) {
                String candidate = withSlash(artifactDir) + "pom.properties";
                Set<String> files = ctx.getResourcePaths(withSlash(artifactDir));
                if (files != null && files.contains(candidate)) {
                    found.add(candidate);
                }
            }
        }
        if (found.isEmpty()) {
            throw new ServletException("no pom.properties under " + MAVEN_DIR);
        }
        if (found.size() > 1) {
            ctx.log("several pom.properties found, using the first of " + found);
        }
        return found.iterator().next();
    }

    private static Set<String> children(ServletContext ctx, String dir) {
        Set<String> paths = ctx.getResourcePaths(withSlash(dir));
        Set<String> dirs = new TreeSet<>();
        if (paths != null) {
            for (String p : paths) {
                if (p.endsWith("/")) {
                    dirs.add(p);
                }
            }
        }
        return dirs;
    }

    private static String withSlash(String dir) {
        return dir.endsWith("/") ? dir : dir + "/";
    }

    private static Properties readProperties(ServletContext ctx, String path) throws ServletException {
        try (InputStream in = ctx.getResourceAsStream(path)) {
            if (in == null) {
                return null;
            }
            Properties props = new Properties();
            try (Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
                props.load(reader);
            }
            return props;
        } catch (IOException e) {
            throw new ServletException("cannot read " + path, e);
        }
    }

    private static long parseDelay(String value) {
        try {
            return Math.max(0L, Long.parseLong(value.trim()));
        } catch (NumberFormatException e) {
            return 0L;
        }
    }
}
