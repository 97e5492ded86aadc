package sample;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

/**
 * GET / : a small HTML page naming the deployed version and the "greeting"
 * from config.properties on the classpath (re-read on every request, so a
 * changed config shows without a redeploy). In mode=flaky every fifth request
 * answers 500 "flaky build": a release /status calls healthy that fails its users;
 * in mode=slow every request waits 300 ms first: healthy, and slow for its users.
 */
public final class VersionServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    static final String NO_CONFIG = "(no config.properties)";

    private transient AppInfo info;
    private final AtomicLong served = new AtomicLong();

    @Override
    public void init() throws ServletException {
        info = AppInfo.load(getServletContext());
    }

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        if ("slow".equals(info.mode)) {
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if ("flaky".equals(info.mode) && served.incrementAndGet() % 5 == 0) {
            byte[] body = ("flaky build " + info.version + "\n").getBytes(StandardCharsets.UTF_8);
            resp.setStatus(HttpServletResponse.SC_INTERNAL_SERVER_ERROR);
            resp.setContentType("text/plain; charset=UTF-8");
            resp.setContentLength(body.length);
            resp.getOutputStream().write(body);
            return;
        }
        String title = escape(info.artifactId + " " + info.version);
        String html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title
                + "</title></head>\n<body>\n<h1>" + title + "</h1>\n"
                + "<p>groupId: " + escape(info.groupId) + "</p>\n"
                + "<p>greeting: <span id=\"greeting\">" + escape(greeting()) + "</span></p>\n"
                + "</body></html>\n";
        byte[] bytes = html.getBytes(StandardCharsets.UTF_8);
        resp.setContentType("text/html; charset=UTF-8");
        resp.setHeader("Cache-Control", "no-store");
        resp.setContentLength(bytes.length);
        resp.getOutputStream().write(bytes);
    }

    private static String greeting() throws IOException {
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        try (InputStream in = loader.getResourceAsStream("config.properties")) {
            if (in == null) {
                return NO_CONFIG;
            }
            Properties props = new Properties();
            try (Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
                props.load(reader);
            }
            return props.getProperty("greeting", "(no greeting in config.properties)");
        }
    }

    private static String escape(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<': out.append("&lt;"); break;
                case '>': out.append("&gt;"); break;
                case '&': out.append("&amp;"); break;
                case '"': out.append("&quot;"); break;
                case '\'': out.append("&#39;"); break;
                default: out.append(c);
            }
        }
        return out.toString();
    }
}
