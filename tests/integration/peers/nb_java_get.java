// nb_java_get.java PORT [HOST]: a Java HTTP client the way most Java code
// connects with a timeout: new Socket(); s.connect(new InetSocketAddress(host,
// port), 5000) (NioSocketImpl: a non-blocking connect waited for with poll),
// then "GET / HTTP/1.0". Prints the response body to stdout and exits 0; on an
// error prints "error: CLASS: MESSAGE" to stderr and exits 1. Prints
// "connecting" to stderr just before the connect (the JVM takes a while to
// start: the test starts its late server from there).
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

public class nb_java_get {
    public static void main(String[] args) {
        int port = Integer.parseInt(args[0]);
        String host = args.length > 1 ? args[1] : "127.0.0.1";
        try (Socket s = new Socket()) {
            System.err.println("connecting");
            System.err.flush();
            s.connect(new InetSocketAddress(host, port), 5000);
            OutputStream out = s.getOutputStream();
            out.write(("GET / HTTP/1.0\r\nHost: " + host + ":" + port + "\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            for (int n; (n = in.read(buf)) > 0; )
                all.write(buf, 0, n);
            String resp = all.toString(StandardCharsets.ISO_8859_1);
            int at = resp.indexOf("\r\n\r\n");
            if (!resp.startsWith("HTTP/1.0 200") && !resp.startsWith("HTTP/1.1 200") || at < 0) {
                System.err.println("error: bad response: " + resp.split("\r\n", 2)[0]);
                System.exit(1);
            }
            System.out.print(resp.substring(at + 4));
            System.out.flush();
        } catch (Exception e) {
            System.err.println("error: " + e.getClass().getName() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
