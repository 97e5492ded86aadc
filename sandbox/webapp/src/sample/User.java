package sample;

import java.io.Serializable;

/**
 * Who logged in, kept in the session as attribute "user". Serializable with a
 * fixed serialVersionUID, so a session replicated to (or restored by) another
 * instance running another build of this app still reads it.
 */
final class User implements Serializable {
    private static final long serialVersionUID = 1L;

    final String name;
    final long loggedInAtMs;

    User(String name, long loggedInAtMs) {
        this.name = name;
        this.loggedInAtMs = loggedInAtMs;
    }
}
