package surestream.flink;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.reader.SimpleStreamFormat;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.table.data.RowData;

/**
 * A file's lines, each made a row by a {@link LineParser} (see {@link LineFormatFactory},
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

    /**
     * A line's row, or {@code null}: the line is not read. {@code utf8}: the line's bytes
     * are valid UTF-8 (else {@code line} holds U+FFFD for the invalid bytes).
     */
    interface LineParser extends Serializable {
        RowData parse(String line, boolean utf8);
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
        private int length;

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
                // (U+FFFD in the text: a replaced byte, or the character itself, validly
                // written: the bytes tell; rare, so checked only then)
                boolean utf8 = text.indexOf('\uFFFD') < 0 || isUtf8();
                RowData row = parser.parse(text, utf8);
                if (row != null) {
                    return row;
                }
            }
        }

        /** The bytes of the line just read are valid UTF-8. */
        private boolean isUtf8() {
            try {
                StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(line, 0, length));
                return true;
            } catch (CharacterCodingException e) {
                return false;
            }
        }

        private String readLine() throws IOException {
            length = 0;
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
