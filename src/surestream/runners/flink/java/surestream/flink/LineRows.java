package surestream.flink;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.reader.SimpleStreamFormat;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

/**
 * A file's lines as rows of one STRING column (see {@link LinesFormatFactory}): split at
 * {@code \n} only (a lone {@code \r} is part of its line, as in Flink's {@code raw} format),
 * a {@code \r} right before the {@code \n} dropped, bytes decoded as UTF-8 (invalid bytes
 * become U+FFFD). The last line needs no {@code \n}; an empty line is an empty string.
 */
final class LineRows extends SimpleStreamFormat<RowData> {

    private static final long serialVersionUID = 1L;
    private final TypeInformation<RowData> producedType;

    LineRows(TypeInformation<RowData> producedType) {
        this.producedType = producedType;
    }

    @Override
    public Reader<RowData> createReader(Configuration config, FSDataInputStream stream) {
        return new LineReader(new BufferedInputStream(stream, 1 << 16));
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }

    private static final class LineReader implements Reader<RowData> {
        private final InputStream in;
        private byte[] line = new byte[256];

        LineReader(InputStream in) {
            this.in = in;
        }

        @Override
        public RowData read() throws IOException {
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
            return GenericRowData.of(
                    StringData.fromString(new String(line, 0, length, StandardCharsets.UTF_8)));
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
