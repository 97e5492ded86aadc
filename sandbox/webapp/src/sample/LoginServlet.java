package sample;

import java.io.IOException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import javax.servlet.http.HttpSession;

/**
 * POST /login with form field "user": puts a User in the session, so a test
 * can tell whether a session survives a restart or a switch of instance.
 * No password: this is a probe for session state, not an access control.
 * An optional "timeout" (seconds) makes the session expire that soon when idle.
 */
public final class LoginServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    static final int MAX_NAME = 64;
    static final int MAX_TIMEOUT = 86_400;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String given = req.getParameter(Text.USER);
        String name = given == null ? "" : given.trim();
        if (name.isEmpty() || name.length() > MAX_NAME) {
            Text.send(resp, HttpServletResponse.SC_BAD_REQUEST, "give user=NAME (1 to 64 characters)\n");
            return;
        }
        if (req.getSession(false) != null) {
            req.changeSessionId(); // a new identity for a new login (session fixation)
        }
        int timeout;
        try {
            String raw = req.getParameter("timeout");
            timeout = raw == null ? 0 : Integer.parseInt(raw.trim());
        } catch (NumberFormatException e) {
            timeout = -1;
        }
        if (timeout < 0 || timeout > MAX_TIMEOUT) {
            Text.send(resp, HttpServletResponse.SC_BAD_REQUEST, "timeout is 1 to 86400 seconds\n");
            return;
        }
        HttpSession session = req.getSession(true);
        if (timeout > 0) {
            session.setMaxInactiveInterval(timeout);
        }
        session.setAttribute(Text.USER, new User(name, System.currentTimeMillis()));
        Text.send(resp, HttpServletResponse.SC_OK, "logged in as " + name + "\n");
    }
}
