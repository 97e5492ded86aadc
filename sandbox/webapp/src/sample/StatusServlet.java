package sample;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

/**
 * GET /status: "groupId:artifactId version\n" in mode=ok, 500 in mode=broken,
 * no answer in mode=hang. Its init (load-on-startup) also carries the
 * simulated slow start, so the delay is paid at deploy time.
 */
public final class StatusServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    /** Upper bound for mode=hang, so a forgotten request cannot pin a thread forever. */
    static final long HANG_MS = 600_000L;

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
                send(resp, HttpServletResponse.SC_OK, info.coordinates() + "\n");
        }
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
