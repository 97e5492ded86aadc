package sample;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * GET /status: "groupId:artifactId version\n" in mode=ok, then facts about the
 * running JVM as "name: value" lines (pid, started, heap-max-mb, log-level); 500
 * in mode=broken, no answer in mode=hang. Its init (load-on-startup) also
 * carries the simulated slow start, so the delay is paid at deploy time.
 *
 * Logging goes through slf4j only (logback, from WEB-INF/lib, behind it): every
 * request logs at DEBUG, and log-level is the root logger's effective level, so a
 * level changed in the node's logback.xml shows here and in the container's log.
 */
public final class StatusServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    /** Upper bound for mode=hang, so a forgotten request cannot pin a thread forever. */
    static final long HANG_MS = 600_000L;

    private static final Logger LOG = LoggerFactory.getLogger(StatusServlet.class);

    private transient AppInfo info;

    @Override
    public void init() throws ServletException {
        info = AppInfo.load(getServletContext());
        getServletContext().log("sample " + info.coordinates() + " mode=" + info.mode
                + " startup_delay_ms=" + info.startupDelayMs);
        if (info.startupDelayMs > 0) {
            sleep(info.startupDelayMs);
        }
    }

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        switch (info.mode) {
            case "broken":
                send(resp, HttpServletResponse.SC_INTERNAL_SERVER_ERROR, "broken build " + info.version + "\n");
                return;
            case "hang":
                sleep(HANG_MS);
                send(resp, HttpServletResponse.SC_SERVICE_UNAVAILABLE, "hang timed out\n");
                return;
            default:
                LOG.debug("status asked");
                send(resp, HttpServletResponse.SC_OK, info.coordinates() + "\n" + facts());
        }
    }

    /** The "name: value" lines after the first: which JVM answers, and how it logs. */
    private static String facts() {
        return "pid: " + ProcessHandle.current().pid() + "\n"
                + "started: " + ManagementFactory.getRuntimeMXBean().getStartTime() + "\n"
                + "heap-max-mb: " + Runtime.getRuntime().maxMemory() / 1048576 + "\n"
                + "log-level: " + rootLevel() + "\n";
    }

    /** The root logger's effective level, as far as slf4j can tell it. */
    static String rootLevel() {
        Logger root = LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME);
        if (root.isTraceEnabled()) {
            return "TRACE";
        } else if (root.isDebugEnabled()) {
            return "DEBUG";
        } else if (root.isInfoEnabled()) {
            return "INFO";
        } else if (root.isWarnEnabled()) {
            return "WARN";
        } else if (root.isErrorEnabled()) {
            return "ERROR";
        }
        return "OFF";
    }

    private static void send(HttpServletResponse resp, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        resp.setStatus(status);
        resp.setContentType("text/plain; charset=UTF-8");
        resp.setHeader("Cache-Control", "no-store");
        resp.setContentLength(bytes.length);
        resp.getOutputStream().write(bytes);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
