package surestream.flink;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.reader.SimpleStreamFormat;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.table.data.RowData;

/**
 * A file's lines, each made a row by a {@link LineParser} (see {@link LinesFormatFactory},
 * {@link JsonFormatFactory}): split at {@code \n} only (a lone {@code \r} is part of its
 * line, as in Flink's {@code raw} format), a {@code \r} right before the {@code \n} dropped,
 * bytes decoded as UTF-8 (invalid bytes become U+FFFD). The last line needs no {@code \n};
 * an empty line is an empty string. A line the parser makes no row of is skipped -- by the
 * reader itself, so a restored reader (which skips the rows already read) skips it again.
 */
final class LineRows extends SimpleStreamFormat<RowData> {

    private static final long serialVersionUID = 1L;
    private final TypeInformation<RowData> producedType;
    private final LineParser parser;

    /** A line's row, or {@code null}: the line is not read. */
    interface LineParser extends Serializable {
        RowData parse(String line);
    }

    LineRows(TypeInformation<RowData> producedType, LineParser parser) {
        this.producedType = producedType;
        this.parser = parser;
    }

    @Override
    public Reader<RowData> createReader(Configuration config, FSDataInputStream stream) {
        return new LineReader(new BufferedInputStream(stream, 1 << 16), parser);
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }

    private static final class LineReader implements Reader<RowData> {
        private final InputStream in;
        private final LineParser parser;
        private byte[] line = new byte[256];

        LineReader(InputStream in, LineParser parser) {
            this.in = in;
            this.parser = parser;
        }

        @Override
        public RowData read() throws IOException {
            while (true) {
                String text = readLine();
                if (text == null) {
                    return null;
                }
                RowData row = parser.parse(text);
                if (row != null) {
                    return row;
                }
            }
        }

        private String readLine() throws IOException {
            int length = 0;
            int b = in.read();
            if (b < 0) {
                return null;
            }
            while (b >= 0 && b != '\n') {
                if (length == line.length) {
                    line = Arrays.copyOf(line, length * 2);
                }
                line[length++] = (byte) b;
                b = in.read();
            }
            if (b == '\n' && length > 0 && line[length - 1] == '\r') {
                length--;
            }
            return new String(line, 0, length, StandardCharsets.UTF_8);
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
