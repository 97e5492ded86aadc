package sample;

import javax.servlet.ServletContextEvent;
import javax.servlet.ServletContextListener;
import org.slf4j.ILoggerFactory;
import org.slf4j.LoggerFactory;

/**
 * Stops the logging backend with the webapp. logback (from WEB-INF/lib) runs
 * threads of its own, the scan of logback.xml among them; left running they
 * would pin the undeployed webapp's class loader (Tomcat warns of a leak, and a
 * retired parallel version would never be collected). slf4j 1.7 has no stop, so
 * the backend's own stop() is called by name: the code knows no logback class.
 */
public final class LoggingListener implements ServletContextListener {
    @Override
    public void contextInitialized(ServletContextEvent event) {
        // logback configures itself at the first LoggerFactory call
    }

    @Override
    public void contextDestroyed(ServletContextEvent event) {
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        try {
            factory.getClass().getMethod("stop").invoke(factory);
        } catch (ReflectiveOperationException | RuntimeException e) {
            event.getServletContext().log("could not stop " + factory.getClass().getName(), e);
        }
    }
}
