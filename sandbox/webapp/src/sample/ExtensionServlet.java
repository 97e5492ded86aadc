package sample;

import java.io.IOException;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

/**
 * GET /extension: the text of sample.ext.Greeting, a class that is not in the WAR
 * but in an extension jar the container mounts beside it (WEB-INF/lib from outside),
 * with the version of the WAR that loaded it; 404 when no extension provides it.
 */
public final class ExtensionServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    static final String CLASS = "sample.ext.Greeting";

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp)
            throws IOException, ServletException {
        String version = AppInfo.load(getServletContext()).version;
        try {
            Class<?> greeting = Thread.currentThread().getContextClassLoader().loadClass(CLASS);
            Object text = greeting.getMethod("text").invoke(null);
            Text.send(resp, HttpServletResponse.SC_OK, version + " " + text + "\n");
        } catch (ClassNotFoundException e) {
            Text.send(resp, HttpServletResponse.SC_NOT_FOUND, version + " no extension\n");
        } catch (ReflectiveOperationException e) {
            Text.send(resp, HttpServletResponse.SC_INTERNAL_SERVER_ERROR, e + "\n");
        }
    }
}
