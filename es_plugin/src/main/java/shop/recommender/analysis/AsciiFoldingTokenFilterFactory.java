package shop.recommender.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.BooleanSetting;

/**
 * {@code asciifolding}: folds letters outside Basic Latin to their ASCII equivalents ("café" to "cafe").
 * Supports {@code preserve_original} like the built-in filter of the same name.
 */
@NamedComponent("asciifolding")
public class AsciiFoldingTokenFilterFactory implements TokenFilterFactory {

    /** Settings of an {@code asciifolding} filter definition in an index's analysis settings. */
    @AnalysisSettings
    public interface Settings {
        /** Also emit the unfolded token at the same position. */
        @BooleanSetting(path = "preserve_original", defaultValue = false)
        boolean preserveOriginal();
    }

    private final boolean preserveOriginal;

    /** Elasticsearch allows one public constructor; a filter named without a definition gets the defaults. */
    @Inject
    public AsciiFoldingTokenFilterFactory(Settings settings) {
        this.preserveOriginal = settings.preserveOriginal();
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new ASCIIFoldingFilter(tokenStream, preserveOriginal);
    }

    /**
     * Normalization yields one folded token, never the original beside it. (Elasticsearch 9.2 does not
     * accept token filters of stable plugins in a custom normalizer, whatever this method does.)
     */
    @Override
    public TokenStream normalize(TokenStream tokenStream) {
        return new ASCIIFoldingFilter(tokenStream, false);
    }
}
