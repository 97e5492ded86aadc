package sample;

import java.io.IOException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import javax.servlet.http.HttpSession;

/** GET /whoami: the logged-in user's name, or 401 when the session has none. */
public final class WhoamiServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        HttpSession session = req.getSession(false);
        Object user = session == null ? null : session.getAttribute(Text.USER);
        if (user instanceof User) {
            Text.send(resp, HttpServletResponse.SC_OK, ((User) user).name + "\n");
        } else {
            Text.send(resp, HttpServletResponse.SC_UNAUTHORIZED, "not logged in\n");
        }
    }
}
